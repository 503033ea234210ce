/* What changed between two runs on the same GT: each GT's outcome in run a and in run b, at the IoU threshold of
   the DuckDB variable iou_threshold (0.5 unset) and the score threshold score_threshold (none unset). The runs are
   the variables run_a and run_b: `set variable run_a = 'baseline'; set variable run_b = 'fixed'`.
   grain: one row per non-crowd GT; key: gt_id.
   change: 'fixed' (missed by a, found by b), 'broken' (found by a, missed by b), 'same'. */
with a as (
    select * from gt_outcomes where run = getvariable('run_a')::VARCHAR and not ignored
),

b as (
    select * from gt_outcomes where run = getvariable('run_b')::VARCHAR and not ignored
),

final as (
    select
        a.gt_id, a.image_id, a.category_id, a.iou_threshold,
        a.found as found_a, b.found as found_b,
        case
            when not a.found and b.found then 'fixed'
            when a.found and not b.found then 'broken'
            else 'same'
        end as change
    from a
    join b on b.gt_id = a.gt_id
)
select * from final
