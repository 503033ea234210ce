/* Ground-truth annotations. grain: one row per annotation; key: gt_id.
   area is the file's `area` field (COCO: the mask area), null where absent;
   iscrowd is null where absent, which pycocotools reads as "not crowd". */
with source as (
    select * from read_parquet('{workspace}/gt.parquet')
),

final as (
    select
        gt_id, image_id, category_id,
        x, y, w, h,
        [x, y, w, h] as bbox,
        area,
        iscrowd,
        segmentation
    from source
)
select * from final
