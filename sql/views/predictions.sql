/* Predictions of every run. grain: one row per prediction per run; key: (run, pred_id).
   pred_id is the 1-based position in the results file (pycocotools loadRes numbers them the same way);
   area = w * h for records with a bbox (loadRes), the mask area otherwise. */
with source as (
    select * from read_parquet('{workspace}/predictions/*.parquet', union_by_name = true)
),

final as (
    select
        run, pred_id, image_id, category_id,
        x, y, w, h,
        [x, y, w, h] as bbox,
        score,
        area,
        segmentation
    from source
)
select * from final
