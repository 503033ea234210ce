/* COCO's verdict on every prediction at one IoU threshold, from the stored outcomes (odfail.match.outcomes:
   written by the first analysis of a run). The threshold is the DuckDB variable iou_threshold (0.5 when unset):
   `set variable iou_threshold = 0.3` (any of the run's stored thresholds: 0.05 ... 0.95 in steps of 0.05).
   grain: one row per prediction per run; key: (run, pred_id).
   outcome: 'TP', 'FP', or 'ignored' (matched a crowd region, or cut by COCO's 100 best per image and class). */
with outcomes as (
    select * from read_parquet('{workspace}/pred_outcomes/*.parquet', union_by_name = true)
),

final as (
    select
        o.run, o.pred_id, o.image_id, o.category_id, o.score, o.class_rank, t.iou_threshold,
        case
            -- COCO cuts each image and category to its 100 best predictions before matching
            when not o.kept then 'ignored'
            when (o.tp_bits >> t.bit) & 1 = 1 then 'TP'
            when (o.fp_bits >> t.bit) & 1 = 1 then 'FP'
            -- matched a crowd region: neither right nor wrong
            else 'ignored'
        end as outcome
    from outcomes as o
    join outcome_threshold as t on t.run = o.run
)
select * from final
