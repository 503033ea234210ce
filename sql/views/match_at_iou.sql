/* The per-threshold matches of `matches` in long form, with COCO's verdict at area range "all".
   grain: one row per prediction per run per IoU threshold; key: (run, pred_id, iou_threshold).
   outcome: 'TP' (matched a regular GT), 'FP' (unmatched), 'ignored' (matched a crowd GT, or cut by maxDets:
   rank >= 100). */
with thresholds as (
    select i, round(0.5 + 0.05 * (i - 1), 2) as iou_threshold
    from range(1, 11) as t(i)
),

final as (
    select
        m.run, m.pred_id, m.image_id, m.category_id, m.score, m.rank,
        t.iou_threshold,
        m.match_gt[t.i] as gt_id,
        case
            -- COCO cuts each image and category to its 100 best predictions before matching
            when m.rank is null or m.rank >= 100 then 'ignored'
            when m.match_gt[t.i] is null then 'FP'
            -- a prediction on a crowd region is neither right nor wrong
            when g.iscrowd then 'ignored'
            else 'TP'
        end as outcome
    from matches as m
    cross join thresholds as t
    left join gt as g on g.gt_id = m.match_gt[t.i]
)
select * from final
