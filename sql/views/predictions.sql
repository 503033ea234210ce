/* Predictions of every run. grain: one row per prediction per run; key: (run, pred_id).
   pred_id is the 1-based position in the results file (pycocotools loadRes numbers them the same way);
   area = w * h for records with a bbox (loadRes), the mask area otherwise;
   class_rank = 0-based rank among the run's predictions of the same category by score (ties: image id,
   then file order), the order COCO's accumulation walks them in. */
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
        class_rank,
        segmentation
    from source
)
select * from final
