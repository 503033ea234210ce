"""One peer, one job, as a whole process: `python peers.py PEER MODE GT DT [IOU_TYPE]`.

MODE load: COCO(gt) + loadRes(dt) (what ingest is compared with); eval: load + evaluate + accumulate + summarize
(what `odfail evaluate` is compared with); inproc: prints seconds of evaluate + accumulate alone, data loaded.
MODE tide (hotcoco, tidecv): load + evaluate + TIDE errors (what `odfail errors` is compared with);
tide-inproc (hotcoco): prints seconds of the first tide_errors call after evaluate, then the best of 5 more.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time


def _api(peer: str):
    if peer == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif peer == "ultrafast":
        from ultrafast_pycocotools.coco import COCO
        from ultrafast_pycocotools.cocoeval import COCOeval
    elif peer == "hotcoco":
        from hotcoco import COCO, COCOeval
    elif peer == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        raise SystemExit(f"unknown peer {peer}")
    return COCO, COCOeval


def tide(peer: str, mode: str, gt: str, dt: str) -> None:
    if peer == "tidecv":
        from tidecv import TIDE, datasets

        with contextlib.redirect_stdout(io.StringIO()):
            t = TIDE()
            t.evaluate(datasets.COCO(gt), datasets.COCOResult(dt, name="r"), mode=TIDE.BOX)
            errors = t.get_all_errors()
        print(errors["main"]["r"]["Cls"] / 100)
        return
    from hotcoco import COCO, COCOeval

    g = COCO(gt)
    E = COCOeval(g, g.loadRes(dt), "bbox")
    E.evaluate()
    t0 = time.perf_counter()
    result = E.tide_errors()
    first = time.perf_counter() - t0
    if mode == "tide-inproc":
        again = []
        for _ in range(5):
            t0 = time.perf_counter()
            E.tide_errors()
            again.append(time.perf_counter() - t0)
        print(first, min(again))
    else:
        print(result["delta_ap"]["Cls"])


def main(peer: str, mode: str, gt: str, dt: str, iou_type: str = "bbox") -> None:
    if mode.startswith("tide"):
        return tide(peer, mode, gt, dt)
    COCO, COCOeval = _api(peer)
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(gt)
        d = g.loadRes(dt)
        if mode == "load":
            return
        E = COCOeval(g, d, iou_type)
        t0 = time.perf_counter()
        E.evaluate()
        E.accumulate()
        t1 = time.perf_counter()
        E.summarize()
    if mode == "inproc":
        print(t1 - t0)
    else:
        print(E.stats[0])


if __name__ == "__main__":
    main(*sys.argv[1:6])
