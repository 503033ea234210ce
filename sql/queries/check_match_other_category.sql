/* Invariant (must return zero rows, class-aware evaluation): a prediction only matches GT of its own category. */
select m.run, m.pred_id, m.category_id, g.category_id as gt_category
from match_at_iou as m
join gt as g on g.gt_id = m.gt_id
where m.category_id <> g.category_id
