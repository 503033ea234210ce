/* Prediction masks as compressed RLE, decoded from `predictions.segmentation` by a run's first mask evaluation.
   grain: one row per prediction per run; key: (run, pred_id). Columns as gt_masks. */
with final as (
    select run, pred_id, height, width, area, x, y, w, h, counts
    from read_parquet('{workspace}/pred_masks/*.parquet', union_by_name = true)
)
select * from final
