/* Invariant (must return zero rows): every regular GT has exactly one status per run with tide_matches, and
   its status agrees with the predictions: TP iff matched, Loc/Cls iff fixed by such an error. */
select g.run, g.gt_id, count(*) as n
from gt_errors as g
left join prediction_errors as m on m.run = g.run and m.gt_id = g.gt_id
left join prediction_errors as f on f.run = g.run and f.error_gt = g.gt_id and f.fixes_gt
group by g.run, g.gt_id
having count(*) <> 1
    or bool_or((g.status = 'TP') <> (m.pred_id is not null))
    or bool_or((g.status in ('Loc', 'Cls')) <> (f.pred_id is not null))
    or bool_or(g.status in ('Loc', 'Cls') and g.status <> f.error_type)
