/* Prediction runs. grain: one row per run; key: run. */
with final as (
    select run, source, ingested_at, predictions
    from read_parquet('{workspace}/runs.parquet')
)
select * from final
