/* COCO match facts per ground-truth annotation, written by `odfail evaluate` for each run.
   grain: one row per GT per run; key: (run, gt_id).
   ignored: crowd (ignored by COCO at area range "all");
   pred_50 ... pred_95: prediction matched at IoU threshold .50 ... .95 (null = missed), pivoted from
   match_pairs; for a crowd GT, which may absorb several, the one with the smallest pred_id. match_pred: as a list.
   iou_best / pred_best: best IoU with a same-class prediction of the run within the maxDets cut, matched or
   not (0 / null when there is none). */
with facts as (
    select * from read_parquet('{workspace}/gt_matches/*.parquet', union_by_name = true)
),

by_threshold as (
    select
        run, gt_id,
        min(pred_id) filter (where iou_threshold = 0.50) as pred_50,
        min(pred_id) filter (where iou_threshold = 0.55) as pred_55,
        min(pred_id) filter (where iou_threshold = 0.60) as pred_60,
        min(pred_id) filter (where iou_threshold = 0.65) as pred_65,
        min(pred_id) filter (where iou_threshold = 0.70) as pred_70,
        min(pred_id) filter (where iou_threshold = 0.75) as pred_75,
        min(pred_id) filter (where iou_threshold = 0.80) as pred_80,
        min(pred_id) filter (where iou_threshold = 0.85) as pred_85,
        min(pred_id) filter (where iou_threshold = 0.90) as pred_90,
        min(pred_id) filter (where iou_threshold = 0.95) as pred_95
    from match_pairs
    group by run, gt_id
),

final as (
    select
        f.run, f.gt_id, f.image_id, f.category_id, f.ignored,
        b.pred_50, b.pred_55, b.pred_60, b.pred_65, b.pred_70, b.pred_75, b.pred_80, b.pred_85, b.pred_90,
        b.pred_95,
        [b.pred_50, b.pred_55, b.pred_60, b.pred_65, b.pred_70, b.pred_75, b.pred_80, b.pred_85, b.pred_90,
         b.pred_95] as match_pred,
        f.iou_best, f.pred_best
    from facts as f
    left join by_threshold as b on b.run = f.run and b.gt_id = f.gt_id
)
select * from final
