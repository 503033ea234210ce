/* COCO match facts per prediction, written by `odfail evaluate` (area range "all", largest maxDets).
   grain: one row per prediction per run; key: (run, pred_id).
   rank: 0-based position by score (ties: file order) among the run's predictions of the same image and
   category; predictions with rank >= maxDets are cut by COCO and never match (rank is null for predictions
   outside the evaluated images or categories).
   gt_50 ... gt_95: GT matched at IoU threshold .50 ... .95 (null = unmatched); match_gt: the same as a list.
   iou_same / gt_same: best IoU with a same-class non-crowd GT, used or not;
   iou_other / gt_other / category_other: best IoU with a non-crowd GT of another class;
   iou_any: the larger of the two; iou_crowd: best crowd IoU (intersection / prediction area) with a
   same-class crowd GT. A prediction matched to a crowd GT is ignored by COCO: see gt.iscrowd. */
with source as (
    select * from read_parquet('{workspace}/matches/*.parquet', union_by_name = true)
),

final as (
    select
        run, pred_id, image_id, category_id, score, rank,
        gt_50, gt_55, gt_60, gt_65, gt_70, gt_75, gt_80, gt_85, gt_90, gt_95,
        [gt_50, gt_55, gt_60, gt_65, gt_70, gt_75, gt_80, gt_85, gt_90, gt_95] as match_gt,
        iou_same, gt_same,
        iou_other, gt_other, category_other,
        greatest(iou_same, iou_other) as iou_any,
        iou_crowd
    from source
)
select * from final
