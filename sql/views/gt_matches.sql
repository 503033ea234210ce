/* COCO match facts per ground-truth annotation, written by `odfail evaluate` for each run.
   grain: one row per GT per run; key: (run, gt_id).
   ignored: crowd (ignored by COCO at area range "all");
   pred_50 ... pred_95: prediction matched at IoU threshold .50 ... .95 (null = missed); match_pred: as a list;
   iou_best / pred_best: best IoU with a same-class prediction of the run within the maxDets cut, matched or
   not (0 / null when there is none). */
with source as (
    select * from read_parquet('{workspace}/gt_matches/*.parquet', union_by_name = true)
),

final as (
    select
        run, gt_id, image_id, category_id, ignored,
        pred_50, pred_55, pred_60, pred_65, pred_70, pred_75, pred_80, pred_85, pred_90, pred_95,
        [pred_50, pred_55, pred_60, pred_65, pred_70, pred_75, pred_80, pred_85, pred_90, pred_95] as match_pred,
        iou_best, pred_best
    from source
)
select * from final
