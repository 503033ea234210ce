/* Invariant (must return zero rows): in tidecv's matching a GT is matched by at most one prediction, of its own
   class, never a crowd GT; and a GT is fixed by at most one Loc or Cls error, only when unmatched. */
with matched as (
    select p.run, p.gt_id, count(*) as n, bool_and(p.category_id = g.category_id) as same_class,
           bool_or(coalesce(g.iscrowd, false)) as crowd
    from prediction_errors as p
    join gt as g on g.gt_id = p.gt_id
    where p.error_type = 'TP'
    group by p.run, p.gt_id
),

fixed as (
    select f.run, f.error_gt, count(*) as n
    from prediction_errors as f
    where f.fixes_gt
    group by f.run, f.error_gt
)

select run, gt_id, 'matched' as problem from matched where n > 1 or not same_class or crowd
union all
select f.run, f.error_gt, 'fixed' from fixed as f where f.n > 1
union all
select f.run, f.error_gt, 'fixed but matched' from fixed as f join matched as m on m.run = f.run
    and m.gt_id = f.error_gt
