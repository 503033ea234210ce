/* Invariant (must return zero rows): matches and gt_matches tell the same story at IoU .50 and .75
   (for regular GT: crowd GT keep only their last match, pycocotools' gtMatches does the same). */
select gm.run, gm.gt_id, gm.pred_50, m.gt_50
from gt_matches as gm
join matches as m on m.run = gm.run and m.pred_id = gm.pred_50
where not gm.ignored and (m.gt_50 is distinct from gm.gt_id)
union all
select gm.run, gm.gt_id, gm.pred_75, m.gt_75
from gt_matches as gm
join matches as m on m.run = gm.run and m.pred_id = gm.pred_75
where not gm.ignored and (m.gt_75 is distinct from gm.gt_id)
