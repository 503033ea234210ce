/* Every tidecv error in one long table: the prediction errors (Cls, Loc, Both, Dupe, Bkg) and the missed GT
   (Miss). grain: one row per error per run. Thresholds: as prediction_errors.
   pred_id is null for Miss; gt_id is the GT the error is about (null for Both and Bkg); gt_category_id is
   that GT's class (for Cls: the class it was confused with); iou: the IoU the error type was decided on. */
with prediction_side as (
    select
        run, error_type, pred_id, error_gt as gt_id, image_id, category_id, score,
        error_category as gt_category_id,
        case error_type
            when 'Loc' then iou_same when 'Cls' then iou_other when 'Dupe' then iou_dupe else iou_any
        end as iou,
        ignored
    from prediction_errors
    where error_code <> 0
),

missed as (
    select
        run, 'Miss' as error_type, null::BIGINT as pred_id, gt_id, image_id, category_id, null::DOUBLE as score,
        category_id as gt_category_id, null::DOUBLE as iou, false as ignored
    from gt_errors
    where status = 'Miss'
),

final as (
    select * from prediction_side
    union all
    select * from missed
)
select * from final
