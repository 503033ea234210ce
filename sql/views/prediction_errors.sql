/* tidecv's verdict on every prediction it looks at: TP, or one error type (Cls, Loc, Both, Dupe, Bkg).
   grain: one row per kept prediction per run; key: (run, pred_id). Reads the tide_matches rows of the
   positive threshold in DuckDB variable pos_threshold (default 0.5) and of iou_type ('bbox', the default, or
   'segm': tidecv's mask mode), and tests the background threshold in bg_threshold (default 0.1):
   SET VARIABLE bg_threshold = 0.2;
   ignored: inside a crowd region; tidecv still types it (and counts it) but never scores it, unless a fix
   turns it into a TP.
   error_gt / error_category: the GT the error is about (Loc, Cls: the GT a fix would match; Dupe: the GT
   already taken) and its class. suppressed_by: for Dupe, the prediction that holds that GT.
   fixes_gt: fixing this Loc or Cls error makes it a TP. tidecv (BestGTMatch) lets one error per GT do that,
   the highest-scoring one (ties: processed first), and only when the GT is unmatched; fixing the others
   drops them. */
with kept as (
    select t.*, coalesce(getvariable('bg_threshold')::DOUBLE, 0.1) as bg
    from tide_matches as t
    where t.pos_threshold = coalesce(getvariable('pos_threshold')::DOUBLE, 0.5)
        and t.iou_type = coalesce(getvariable('iou_type')::VARCHAR, 'bbox') and t.kept
),

typed as materialized (
    select
        *,
        -- tidecv TIDERun._eval_image: the first test that holds wins, in this order
        case
            -- the greedy matching gave it a same-class GT at IoU >= pos
            when gt_id is not null then 'TP'
            -- the image has no regular GT, so there was nothing to find (tested before anything else)
            when not image_has_gt then 'Bkg'
            -- right class, and its best same-class GT overlaps at bg..pos (both inclusive): a better box fixes it
            when iou_same between bg and pos_threshold then 'Loc'
            -- a GT of another class overlaps at >= pos: the right label fixes it
            when iou_other >= pos_threshold then 'Cls'
            -- right class and box, but its GT was already taken by a higher-scoring prediction
            when iou_dupe >= pos_threshold then 'Dupe'
            -- no GT of any class overlaps it above bg
            when iou_any <= bg then 'Bkg'
            -- overlaps something above bg, but neither the class nor the box is right
            else 'Both'
        end as error_type
    from kept
),

related as (
    select
        *,
        case error_type when 'Loc' then gt_same when 'Cls' then gt_other when 'Dupe' then gt_dupe end as error_gt,
        case error_type when 'Cls' then category_other when 'Loc' then category_id when 'Dupe' then category_id
        end as error_category
    from typed
),

taken as (
    select run, gt_id, pred_id from typed where gt_id is not null
),

-- tidecv BestGTMatch (see above): per unmatched GT, the Loc or Cls error a fix turns into a TP
best_fix as (
    select r.run, arg_max(r.pred_id, [r.score, -r.push_order]) as pred_id
    from related as r
    anti join taken as u on u.run = r.run and u.gt_id = r.error_gt
    where r.error_type in ('Loc', 'Cls')
    group by r.run, r.error_gt
),

final as (
    select
        r.run, r.iou_type, r.pos_threshold, r.bg as bg_threshold, r.pred_id, r.image_id, r.category_id, r.score,
        r.image_rank, r.push_order, r.class_order, r.error_type, r.ignored, r.gt_id, r.error_gt, r.error_category,
        u.pred_id as suppressed_by,
        b.pred_id is not null as fixes_gt,
        r.iou_same, r.gt_same, r.iou_other, r.gt_other, r.category_other, r.iou_dupe, r.gt_dupe, r.iou_any
    from related as r
    left join taken as u on r.error_type = 'Dupe' and u.run = r.run and u.gt_id = r.error_gt
    left join best_fix as b on b.run = r.run and b.pred_id = r.pred_id
)
select * from final
