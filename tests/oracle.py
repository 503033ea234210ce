"""pycocotools as the oracle: run it quietly on files or in-memory dicts."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np


def pycoco_eval(gt: dict | str, dt: list | str, area_ranges: dict | None = None, max_dets=None, use_cats=True,
                summarize=True, img_ids=None, cat_ids=None):
    """COCOeval(bbox) with optional params; returns the COCOeval object (eval arrays, stats if summarize)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(gt, dict):
            g = COCO()
            g.dataset = copy.deepcopy(gt)
            g.createIndex()
        else:
            g = COCO(gt)
        d = g.loadRes(copy.deepcopy(dt) if isinstance(dt, list) else dt)
        E = COCOeval(g, d, "bbox")
        if area_ranges is not None:
            E.params.areaRng = [list(v) for v in area_ranges.values()]
            E.params.areaRngLbl = list(area_ranges)
        if max_dets is not None:
            E.params.maxDets = list(max_dets)
        E.params.useCats = int(use_cats)
        if img_ids is not None:
            E.params.imgIds = list(img_ids)
        if cat_ids is not None:
            E.params.catIds = list(cat_ids)
        E.evaluate()
        E.accumulate()
        if summarize:
            E.summarize()
    return E


def assert_arrays_equal(ours, E):
    """precision and recall equal element-wise (same floats, not just close)."""
    np.testing.assert_array_equal(ours.precision, E.eval["precision"])
    np.testing.assert_array_equal(ours.recall, E.eval["recall"])
