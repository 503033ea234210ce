/* Quality metrics of every prediction (odfail.analysis.metrics; `odfail metrics -w WS` lists them), written by
   the first metric analysis of a run; custom metrics (`odfail metric add`) are further columns.
   grain: one row per prediction per run; key: (run, pred_id). */
select * from read_parquet('{workspace}/prediction_metrics/*.parquet', union_by_name = true)
