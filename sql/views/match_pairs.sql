/* Every COCO match of `odfail evaluate` (area range "all", largest maxDets): which prediction matched which GT
   at which IoU threshold. grain: one row per match; key: (run, pred_id, iou_threshold).
   A crowd GT may appear many times at one threshold (it absorbs predictions, which COCO then ignores). */
with final as (
    select run, pred_id, gt_id, iou_threshold
    from read_parquet('{workspace}/match_pairs/*.parquet', union_by_name = true)
)
select * from final
