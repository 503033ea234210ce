/* Which class was taken for which, at the positive threshold of tidecv's matching: a (K+1) x (K+1) confusion
   matrix with background, as its non-empty cells. grain: one row per (run, actual, predicted) cell;
   a null category is background. Variables: pos_threshold (as prediction_errors) and score_threshold
   (default: every prediction):  SET VARIABLE score_threshold = 0.3;
   One-to-one: every regular GT counts once in its row, every prediction with score >= score_threshold once
   in its column (predictions in crowd regions are left out, as tidecv leaves them out of AP):
   a TP -> (class, class); a Cls error on a GT that no prediction matched -> (GT's class, predicted class),
   the highest-scoring one per GT; every other prediction -> (background, predicted);
   a GT neither matched nor claimed -> (class, background).
   tidecv matches in score order, so the matches above a score threshold are the same with or without the
   predictions below it. */
with scored as (
    select *
    from prediction_errors
    where score >= coalesce(getvariable('score_threshold')::DOUBLE, '-inf'::DOUBLE) and not ignored
),

taken as (
    select run, gt_id from scored where gt_id is not null
),

claims as (
    select
        p.run, p.pred_id, p.error_gt, p.error_category,
        row_number() over (partition by p.run, p.error_gt order by p.score desc, p.push_order) as claim_rank
    from scored as p
    anti join taken as t on t.run = p.run and t.gt_id = p.error_gt
    where p.error_code = 1
),

prediction_cells as (
    select
        p.run,
        case when p.gt_id is not null then p.category_id else c.error_category end as actual_category_id,
        p.category_id as predicted_category_id,
        coalesce(p.gt_id, c.error_gt) as found_gt
    from scored as p
    left join claims as c on c.run = p.run and c.pred_id = p.pred_id and c.claim_rank = 1
),

found as (
    select run, found_gt from prediction_cells where found_gt is not null
),

gt_cells as (
    select g.run, g.category_id as actual_category_id, null::BIGINT as predicted_category_id
    from gt_errors as g
    anti join found as f on f.run = g.run and f.found_gt = g.gt_id
),

final as (
    select run, actual_category_id, predicted_category_id, count(*) as n
    from (
        select run, actual_category_id, predicted_category_id from prediction_cells
        union all
        select run, actual_category_id, predicted_category_id from gt_cells
    )
    group by all
)
select * from final
