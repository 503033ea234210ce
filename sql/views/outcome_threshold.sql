/* The stored outcome threshold each run is read at: the DuckDB variable iou_threshold (0.5 when unset), matched to
   the run's stored thresholds to 1e-9 (0.6 is COCO's 0.6000000000000001). Read by prediction_outcomes and
   gt_outcomes. grain: one row per run with stored outcomes at that threshold; key: run.
   bit: the threshold's position in the run's tp_bits / fp_bits / match_score. */
select run, bit, iou_threshold
from read_parquet('{workspace}/outcome_thresholds/*.parquet', union_by_name = true)
where abs(iou_threshold - coalesce(getvariable('iou_threshold')::DOUBLE, 0.5)) < 1e-9
