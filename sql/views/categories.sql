/* Categories of the ground truth. grain: one row per category; key: category_id. */
with final as (
    select category_id, name, supercategory
    from read_parquet('{workspace}/categories.parquet')
)
select * from final
