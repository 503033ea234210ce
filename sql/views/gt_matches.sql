/* COCO match facts per ground-truth annotation, written by `odfail evaluate` for each run.
   grain: one row per GT per run; key: (run, gt_id).
   ignored: crowd (ignored by COCO at area range "all"); match_pred[i]: pred_id matched at IoU threshold
   0.50 + 0.05 * (i - 1); iou_best / pred_best: best IoU with a same-class prediction of the run within
   the maxDets cut, matched or not. */
with source as (
    select * from read_parquet('{workspace}/gt_matches/*.parquet', union_by_name = true)
),

final as (
    select
        run, gt_id, image_id, category_id, ignored,
        match_pred[1] as pred_id_50,
        match_pred[6] as pred_id_75,
        match_pred,
        iou_best, pred_best
    from source
)
select * from final
