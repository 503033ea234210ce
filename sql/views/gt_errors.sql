/* What became of every regular (non-crowd) GT in tidecv's evaluation of each run with tide_matches (and of
   each run without predictions).
   grain: one row per regular GT per run; key: (run, gt_id). Thresholds: as prediction_errors.
   status: 'TP' (matched; matched_pred), 'Loc' / 'Cls' (unmatched, but a Loc or Cls error would find it if
   fixed; fixed_by is that prediction), or 'Miss' (nothing found it: tidecv's MissedError).
   tidecv's FN oracle removes every GT that is not 'TP'; its Miss fix removes only the 'Miss' ones. */
with runs as (
    select distinct run
    from tide_matches
    where pos_threshold = coalesce(getvariable('pos_threshold')::DOUBLE, 0.5)
        and iou_type = coalesce(getvariable('iou_type')::VARCHAR, 'bbox')
    union
    -- a run without predictions has no tide_matches rows, and every GT is a Miss whatever the thresholds
    select run from runs where predictions = 0
),

regular as (
    select r.run, g.gt_id, g.image_id, g.category_id, g.area, g.w, g.h
    from runs as r
    cross join gt as g
    -- tidecv: crowd annotations are ignore regions, never GT to find
    where not coalesce(g.iscrowd, false)
),

matched as (
    select run, gt_id, pred_id from prediction_errors where error_code = 0
),

fixers as (
    select run, error_gt, pred_id, error_type from prediction_errors where fixes_gt
),

final as (
    select
        r.run, r.gt_id, r.image_id, r.category_id, r.area, r.w, r.h,
        case when m.pred_id is not null then 'TP' when f.pred_id is not null then f.error_type else 'Miss'
        end as status,
        m.pred_id as matched_pred,
        f.pred_id as fixed_by
    from regular as r
    left join matched as m on m.run = r.run and m.gt_id = r.gt_id
    left join fixers as f on f.run = r.run and f.error_gt = r.gt_id
)
select * from final
