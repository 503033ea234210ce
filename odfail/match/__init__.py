"""Match: the GT and one run (Parquet) -> numba matching kernels -> match tables.

``coco`` reads the columns, groups them by (category, image) and runs pycocotools' matching and accumulation
bit for bit (``_kernels``), for boxes or masks (``masks``: COCO RLE, polygons, compressed strings, with their
codec in ``_rle`` and ``_seg_kernels``); it gives the precision/recall arrays and the stored ``matches``,
``gt_matches`` and ``match_pairs`` tables. ``tide`` is tidecv's own matching, stored as ``tide_matches``.
``params`` holds what an evaluation evaluates (pycocotools' ``Params``). Kernels are private; call them through
these modules.
"""
