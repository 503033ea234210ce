/* COCO match facts per prediction, written by `odfail evaluate` (area range "all", largest maxDets).
   grain: one row per prediction per run; key: (run, pred_id).
   rank: 0-based position by score (ties: file order) among the run's predictions of the same image and
   category; predictions with rank >= maxDets are cut by COCO and never match (rank is null for predictions
   outside the evaluated images or categories).
   gt_50 ... gt_95: GT matched at IoU threshold .50 ... .95 (null = unmatched), pivoted from match_pairs;
   match_gt: the same as a list. iou_same / gt_same: best IoU with a same-class non-crowd GT, used or not;
   iou_other / gt_other / category_other: best IoU with a non-crowd GT of another class;
   iou_any: the larger of the two; iou_crowd: best crowd IoU (intersection / prediction area) with a
   same-class crowd GT. A prediction matched to a crowd GT is ignored by COCO: see gt.iscrowd. */
with facts as (
    select * from read_parquet('{workspace}/matches/*.parquet', union_by_name = true)
),

by_threshold as (
    select
        run, pred_id,
        any_value(gt_id) filter (where iou_threshold = 0.50) as gt_50,
        any_value(gt_id) filter (where iou_threshold = 0.55) as gt_55,
        any_value(gt_id) filter (where iou_threshold = 0.60) as gt_60,
        any_value(gt_id) filter (where iou_threshold = 0.65) as gt_65,
        any_value(gt_id) filter (where iou_threshold = 0.70) as gt_70,
        any_value(gt_id) filter (where iou_threshold = 0.75) as gt_75,
        any_value(gt_id) filter (where iou_threshold = 0.80) as gt_80,
        any_value(gt_id) filter (where iou_threshold = 0.85) as gt_85,
        any_value(gt_id) filter (where iou_threshold = 0.90) as gt_90,
        any_value(gt_id) filter (where iou_threshold = 0.95) as gt_95
    from match_pairs
    group by run, pred_id
),

final as (
    select
        f.run, f.pred_id, f.image_id, f.category_id, f.score, f.rank,
        b.gt_50, b.gt_55, b.gt_60, b.gt_65, b.gt_70, b.gt_75, b.gt_80, b.gt_85, b.gt_90, b.gt_95,
        [b.gt_50, b.gt_55, b.gt_60, b.gt_65, b.gt_70, b.gt_75, b.gt_80, b.gt_85, b.gt_90, b.gt_95] as match_gt,
        f.iou_same, f.gt_same,
        f.iou_other, f.gt_other, f.category_other,
        greatest(f.iou_same, f.iou_other) as iou_any,
        f.iou_crowd
    from facts as f
    left join by_threshold as b on b.run = f.run and b.pred_id = f.pred_id
)
select * from final
