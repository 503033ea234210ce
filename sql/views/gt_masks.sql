/* GT masks in one form, decoded from `gt.segmentation` (polygons united and rasterised, or RLE) by the first
   mask evaluation (empty until then). grain: one row per GT annotation; key: gt_id.
   height, width: mask size; area: mask pixels (rleArea); x, y, w, h: the mask's box (rleToBbox);
   counts: COCO's compressed RLE string (empty for a GT without segmentation):
   {"size": [height, width], "counts": counts} is what pycocotools.mask reads.
   When every GT mask is its segmentation's own compressed string, the stored table keeps no copy of it
   (counts null) and the string comes from `gt.segmentation`. */
with stored as (
    select * from read_parquet('{workspace}/gt_masks.parquet')
),

final as (
    select
        s.gt_id, s.height, s.width, s.area, s.x, s.y, s.w, s.h,
        coalesce(s.counts, g.segmentation->>'counts', '') as counts
    from stored as s
    left join gt as g on s.counts is null and g.gt_id = s.gt_id
)
select * from final
