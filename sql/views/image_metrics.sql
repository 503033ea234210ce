/* Quality metrics of every image (odfail.analysis.metrics), written by the first metric analysis of a run, and
   what the run got wrong there at the DuckDB variables iou_threshold (0.5 unset) and score_threshold (none unset),
   from the stored outcomes: missing_objects (GT missed: FN) and false_positives.
   grain: one row per image per run; key: (run, image_id). */
with stored as (
    select * from read_parquet('{workspace}/image_metrics/*.parquet', union_by_name = true)
),

missed as (
    select run, image_id, count(*) as missing_objects
    from gt_outcomes
    where not ignored and not found
    group by all
),

false_positives as (
    select run, image_id, count(*) as false_positives
    from prediction_outcomes
    where outcome = 'FP' and score >= coalesce(getvariable('score_threshold')::DOUBLE, '-inf'::DOUBLE)
    group by all
),

final as (
    select
        s.*,
        coalesce(m.missing_objects, 0) as missing_objects,
        coalesce(f.false_positives, 0) as false_positives
    from stored as s
    left join missed as m on m.run = s.run and m.image_id = s.image_id
    left join false_positives as f on f.run = s.run and f.image_id = s.image_id
)
select * from final
