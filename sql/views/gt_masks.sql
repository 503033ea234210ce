/* GT masks in one form, decoded from `gt.segmentation` (polygons united and rasterised, or RLE) by the first
   mask evaluation (empty until then). grain: one row per GT annotation; key: gt_id.
   height, width: mask size; area: mask pixels (rleArea); x, y, w, h: the mask's box (rleToBbox);
   counts: COCO's compressed RLE string (empty for a GT without segmentation):
   {"size": [height, width], "counts": counts} is what pycocotools.mask reads. */
with final as (
    select gt_id, height, width, area, x, y, w, h, counts
    from read_parquet('{workspace}/gt_masks.parquet')
)
select * from final
