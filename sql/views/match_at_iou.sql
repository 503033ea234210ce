/* The match lists of `matches` in long form. grain: one row per prediction per run per IoU threshold;
   key: (run, pred_id, iou_threshold). gt_id is null where the prediction is unmatched at that threshold. */
with thresholds as (
    select i, round(0.5 + 0.05 * (i - 1), 2) as iou_threshold
    from range(1, 11) as t(i)
),

final as (
    select
        m.run, m.pred_id, m.image_id, m.category_id, m.score, m.rank,
        t.iou_threshold,
        m.match_gt[t.i] as gt_id,
        m.match_ignored[t.i] as ignored
    from matches as m
    cross join thresholds as t
)
select * from final
