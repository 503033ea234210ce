/* Invariant (must return zero rows): a regular GT is matched by at most one prediction per run and IoU
   threshold. Crowd GT may absorb many predictions (pycocotools), which are then ignored, not TP. */
select run, gt_id, iou_threshold, count(*) as n
from match_at_iou
where outcome = 'TP'
group by run, gt_id, iou_threshold
having count(*) > 1
