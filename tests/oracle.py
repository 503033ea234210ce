"""pycocotools as the oracle: run it quietly on files or in-memory dicts."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np


def pycoco_eval(gt: dict | str, dt: list | str, area_ranges: dict | None = None, max_dets=None, use_cats=True,
                summarize=True, img_ids=None, cat_ids=None, iou_type="bbox"):
    """COCOeval with optional params; returns the COCOeval object (eval arrays, stats if summarize)."""
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
        E = COCOeval(g, d, iou_type)
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


def tide_eval(gt: dict | str, dt: list | str, pos: float = 0.5, bg: float = 0.1, mode: str = "bbox") -> dict:
    """tidecv's TIDE (box mode) on a COCO GT and results file: AP and dAP as fractions, and the error counts.

    tidecv's COCO loader rasterises every GT mask and needs `segmentation`, `iscrowd` and the image size;
    where a file lacks them (odfail and pycocotools do not need them for boxes) the copy handed to tidecv gets a
    box polygon, iscrowd 0 and a size that holds every box. None of these changes what box mode computes.
    """
    import json
    import os
    import tempfile

    from tidecv import TIDE, datasets

    doc = copy.deepcopy(gt) if isinstance(gt, dict) else json.loads(open(gt).read())
    for img in doc["images"]:
        img.setdefault("file_name", f"{img['id']}.jpg")
        img.setdefault("width", 100_000)
        img.setdefault("height", 100_000)
    for a in doc["annotations"]:
        a.setdefault("iscrowd", 0)
        if "segmentation" not in a:
            x, y, w, h = a["bbox"]
            a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    with tempfile.TemporaryDirectory() as tmp:
        gpath = os.path.join(tmp, "gt.json")
        with open(gpath, "w") as f:
            json.dump(doc, f)
        if isinstance(dt, list):
            dpath = os.path.join(tmp, "dt.json")
            with open(dpath, "w") as f:
                json.dump(dt, f)
        else:
            dpath = dt
        with contextlib.redirect_stdout(io.StringIO()):
            g, d = datasets.COCO(gpath), datasets.COCOResult(dpath, name="r")
            tide = TIDE(pos_threshold=pos, background_threshold=bg)
            run = tide.evaluate(g, d, mode=TIDE.MASK if mode == "segm" else TIDE.BOX, name="r")
            errors = tide.get_all_errors()
    dap = {k: v / 100 for k, v in errors["main"]["r"].items()}
    dap["FP"] = errors["special"]["r"]["FalsePos"] / 100
    dap["FN"] = errors["special"]["r"]["FalseNeg"] / 100
    counts = {t.short_name: len(v) for t, v in run.error_dict.items()}
    return {"ap": run.ap / 100, "dAP": dap, "counts": counts}
