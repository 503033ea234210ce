/* Prediction masks as compressed RLE, decoded from `predictions.segmentation` by a run's first mask evaluation.
   grain: one row per prediction per run; key: (run, pred_id). Columns as gt_masks; likewise, a run whose
   masks are all the results file's own compressed strings keeps no copy of them: counts comes from
   `predictions.segmentation`. */
with stored as (
    select * from read_parquet('{workspace}/pred_masks/*.parquet', union_by_name = true)
),

final as (
    select
        s.run, s.pred_id, s.height, s.width, s.area, s.x, s.y, s.w, s.h,
        coalesce(s.counts, p.segmentation->>'counts', '') as counts
    from stored as s
    left join predictions as p on s.counts is null and p.run = s.run and p.pred_id = s.pred_id
)
select * from final
