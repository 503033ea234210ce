/* tidecv's verdict on every prediction it looks at: TP, or one error type (Cls, Loc, Both, Dupe, Bkg).
   grain: one row per kept prediction per run; key: (run, pred_id). Reads the tide_matches rows of the
   positive threshold in DuckDB variable pos_threshold (default 0.5) and of iou_type ('bbox', the default, or
   'segm': tidecv's mask mode), and tests the background threshold in bg_threshold (default 0.1):
   SET VARIABLE bg_threshold = 0.2;
   error_code: error_type as a small int (0 TP, 1 Cls, 2 Loc, 3 Both, 4 Dupe, 5 Bkg), cheaper to filter on.
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
        -- tidecv TIDERun._eval_image: the first test that holds wins, in this order.
        -- error_code 0 TP, 1 Cls, 2 Loc, 3 Both, 4 Dupe, 5 Bkg (the kernels' E_* codes; the joins below
        -- compare small ints, about 12 ms less per 325k predictions than comparing the names)
        (case
            -- the greedy matching gave it a same-class GT at IoU >= pos: TP
            when gt_id is not null then 0
            -- the image has no regular GT, so there was nothing to find (tested before anything else): Bkg
            when not image_has_gt then 5
            -- right class, and its best same-class GT overlaps at bg..pos (both inclusive): a better box fixes
            -- it: Loc
            when iou_same between bg and pos_threshold then 2
            -- a GT of another class overlaps at >= pos: the right label fixes it: Cls
            when iou_other >= pos_threshold then 1
            -- right class and box, but its GT was already taken by a higher-scoring prediction: Dupe
            when iou_dupe >= pos_threshold then 4
            -- no GT of any class overlaps it above bg: Bkg
            when iou_any <= bg then 5
            -- overlaps something above bg, but neither the class nor the box is right: Both
            else 3
        end)::UTINYINT as error_code
    from kept
),

related as (
    select
        *,
        case error_code when 2 then gt_same when 1 then gt_other when 4 then gt_dupe end as error_gt,
        case error_code when 1 then category_other when 2 then category_id when 4 then category_id
        end as error_category
    from typed
),

taken as (
    select run, gt_id, pred_id from typed where error_code = 0
),

-- tidecv BestGTMatch (see above): per unmatched GT, the Loc or Cls error a fix turns into a TP
best_fix as (
    select r.run, arg_max(r.pred_id, [r.score, -r.push_order]) as pred_id
    from related as r
    anti join taken as u on u.run = r.run and u.gt_id = r.error_gt
    where r.error_code in (1, 2)
    group by r.run, r.error_gt
),

final as (
    select
        r.run, r.iou_type, r.pos_threshold, r.bg as bg_threshold, r.pred_id, r.image_id, r.category_id, r.score,
        r.image_rank, r.push_order, r.class_order,
        ['TP', 'Cls', 'Loc', 'Both', 'Dupe', 'Bkg'][r.error_code + 1] as error_type, r.error_code,
        r.ignored, r.gt_id, r.error_gt, r.error_category,
        u.pred_id as suppressed_by,
        b.pred_id is not null as fixes_gt,
        r.iou_same, r.gt_same, r.iou_other, r.gt_other, r.category_other, r.iou_dupe, r.gt_dupe, r.iou_any
    from related as r
    left join taken as u on r.error_code = 4 and u.run = r.run and u.gt_id = r.error_gt
    left join best_fix as b on b.run = r.run and b.pred_id = r.pred_id
)
select * from final
