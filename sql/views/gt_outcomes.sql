/* Whether each GT was found at one IoU threshold, from the stored outcomes (odfail.match.outcomes). The threshold
   is the DuckDB variable iou_threshold (0.5 when unset), the score threshold score_threshold (none when unset).
   grain: one row per GT per run; key: (run, gt_id).
   ignored: crowd (never counted); found: matched by a prediction scoring >= score_threshold; match_score: that
   prediction's score (null = missed). */
with outcomes as (
    select * from read_parquet('{workspace}/gt_outcomes/*.parquet', union_by_name = true)
),

final as (
    select
        o.run, o.gt_id, o.image_id, o.category_id, o.ignored, t.iou_threshold,
        nullif(o.match_score[t.bit + 1], 'nan'::DOUBLE) as match_score,
        not o.ignored
            and coalesce(o.match_score[t.bit + 1] >= coalesce(getvariable('score_threshold')::DOUBLE, '-inf'::DOUBLE)
                         and not isnan(o.match_score[t.bit + 1]), false) as found
    from outcomes as o
    join outcome_threshold as t on t.run = o.run
)
select * from final
