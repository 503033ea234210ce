/* tidecv's matching of every prediction, written by `odfail errors` (once per IoU type and positive threshold).
   grain: one row per prediction per run per iou_type and pos_threshold; key: (run, iou_type, pos_threshold,
   pred_id). iou_type 'bbox' (box IoU) or 'segm' (tidecv's mask mode: mask IoU).
   tidecv differs from COCO here: it cuts each image (all classes together) to its 100 best predictions,
   does not match crowd GT, breaks IoU ties towards the first GT in file order, and ignores an unmatched
   prediction inside a same-class crowd region only when crowd IoU > pos (strict).
   kept: among its image's 100 best (the rest are invisible to tidecv; their facts are null).
   image_rank: position by score in its image (all classes; ties in file order); push_order: position in
   tidecv's processing order (images in GT file order, then image_rank), its tie-breaker for equal scores;
   class_order: position among the class's kept predictions by (score descending, push_order), gaps allowed:
   the order of tidecv's precision-recall curve.
   gt_id: the GT matched at IoU >= pos_threshold (null = unmatched). ignored: unmatched, in a crowd region.
   image_has_gt: the image has a non-crowd GT. The facts the error waterfall tests, each an argmax over GT in
   file order where GT that do not qualify count as IoU 0 (so with no qualifying GT: 0 and the first GT):
   iou_same/gt_same: best same-class GT, used or not; iou_other/gt_other/category_other: best GT of another
   class; iou_dupe/gt_dupe: best same-class GT that some prediction matched; iou_any: best GT of any class. */
with final as (
    select * from read_parquet('{workspace}/tide_matches/*.parquet', union_by_name = true)
)
select * from final
