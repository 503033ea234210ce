/* Outcomes per class at one IoU and score threshold, from the stored outcomes: the counts of
   `odfail analyze per-class` for plain DuckDB users (AP, AR and the best-F1 threshold come from odfail).
   Parameters: $run; the DuckDB variables iou_threshold (0.5 unset) and score_threshold (none unset).
   grain: one row per category; key: category_id. */
with predictions as (
    select
        category_id,
        count(*) filter (where outcome = 'TP') as tp,
        count(*) filter (where outcome = 'FP') as fp
    from prediction_outcomes
    where run = $run and score >= coalesce(getvariable('score_threshold')::DOUBLE, '-inf'::DOUBLE)
    group by category_id
),

gt as (
    select category_id, count(*) filter (where not ignored) as gt, count(*) filter (where found) as found
    from gt_outcomes
    where run = $run
    group by category_id
),

final as (
    select
        c.category_id, c.name,
        coalesce(g.gt, 0) as gt,
        coalesce(p.tp, 0) as tp,
        coalesce(p.fp, 0) as fp,
        coalesce(g.gt, 0) - coalesce(p.tp, 0) as fn,
        coalesce(g.found, 0) as found
    from categories as c
    left join predictions as p on p.category_id = c.category_id
    left join gt as g on g.category_id = c.category_id
)
select * from final order by category_id
