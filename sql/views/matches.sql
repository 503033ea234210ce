/* COCO match facts per prediction, written by `odfail evaluate` (area range "all", largest maxDets).
   grain: one row per prediction per run; key: (run, pred_id).
   rank: 0-based position by score (ties: file order) among the run's predictions of the same image and
   category; predictions with rank >= maxDets are cut by COCO and never match.
   match_gt[i] / match_ignored[i]: GT matched at IoU threshold 0.50 + 0.05 * (i - 1), and whether that GT
   is ignored (crowd). iou_same / gt_same: best IoU with a same-class non-crowd GT, used or not;
   iou_other / gt_other / category_other: best IoU with a non-crowd GT of another class;
   iou_crowd: best crowd IoU (intersection / prediction area) with a same-class crowd GT. */
with source as (
    select * from read_parquet('{workspace}/matches/*.parquet', union_by_name = true)
),

final as (
    select
        run, pred_id, image_id, category_id, score, rank,
        match_gt[1] as gt_id_50,
        match_gt[6] as gt_id_75,
        match_gt,
        match_ignored,
        iou_same, gt_same,
        iou_other, gt_other, category_other,
        greatest(iou_same, iou_other) as iou_any,
        iou_crowd
    from source
)
select * from final
