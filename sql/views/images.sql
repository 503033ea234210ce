/* Images of the ground truth. grain: one row per image; key: image_id.
   width, height and file_name are null where the GT file omits them. */
with final as (
    select image_id, file_name, width, height
    from read_parquet('{workspace}/images.parquet')
)
select * from final
