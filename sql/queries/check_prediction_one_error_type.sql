/* Invariant (must return zero rows): every prediction tidecv looks at has exactly one verdict (TP or one error
   type) per run, and nothing else has one. */
select t.run, t.pred_id, count(p.pred_id) as verdicts
from tide_matches as t
left join prediction_errors as p on p.run = t.run and p.pred_id = t.pred_id
where t.kept and t.pos_threshold = coalesce(getvariable('pos_threshold')::DOUBLE, 0.5)
    and t.iou_type = coalesce(getvariable('iou_type')::VARCHAR, 'bbox')
group by t.run, t.pred_id
having count(p.pred_id) <> 1 or bool_or(p.error_type not in ('TP', 'Cls', 'Loc', 'Both', 'Dupe', 'Bkg'))
