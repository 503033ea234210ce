/* Quality metrics of every GT object (odfail.analysis.metrics; `odfail metrics -w WS` lists them), written by
   the first metric analysis of a run; custom metrics (`odfail metric add`) are further columns.
   grain: one row per GT per run; key: (run, gt_id). */
select * from read_parquet('{workspace}/gt_metrics/*.parquet', union_by_name = true)
