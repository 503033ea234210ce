"""COCO evaluation of one run: pycocotools' numbers, bit for bit, plus a headline block at one IoU threshold.

Deliberate differences from pycocotools, each for a reason:

- pycocotools' summary takes AP at ``maxDets=100`` literally and the other entries at ``maxDets[2]`` (it fails with
  fewer than three maxDets); odfail takes AP, AP50, AP75 and the per-area entries at the largest maxDets, and
  reports AR at each maxDets. With the default ``[1, 10, 100]`` both agree exactly.
- A GT without ``area`` makes pycocotools fail (KeyError); odfail uses the box area w*h and notes it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from odfail.match.params import DEFAULT_AREAS, IOU_THRS, REC_THRS, Params  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace

_SHORT = {"small": "s", "medium": "m", "large": "l"}


@dataclass(frozen=True)
class AtIoU:
    """Headline numbers at one IoU threshold (area "all", largest maxDets, optional score threshold)."""

    iou: float
    score: float | None
    mAP: float  # mean over categories with GT of the 101-point AP at this threshold
    mAR: float  # mean over categories with GT of recall at this threshold
    precision: float  # TP / (TP + FP), all categories pooled
    recall: float  # TP / (TP + FN), pooled
    f1: float  # mean over categories with GT of per-category F1
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class EvalResult:
    """Everything `evaluate` computed.

    precision: Shape (T, R, K, A, M) = (IoU thresholds, recall points, categories, area ranges, maxDets); -1 where
        a category has no GT in that area range. recall: Shape (T, K, A, M). Same layout as pycocotools' ``eval``.
    """

    run: str
    iou_type: str
    params: Params
    iou_thrs: np.ndarray
    cat_ids: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    stats: dict[str, float]
    at_iou: AtIoU
    per_class: dict[str, np.ndarray]
    notes: list[str]
    seconds: float

    def __str__(self) -> str:
        p = self.params
        lines = []
        top = p.max_dets[-1]
        areas = [a for a in p.area_ranges if a != "all"]
        rows = [("Average Precision", "AP", "0.50:0.95", "all", top, self.stats["AP"]),
                ("Average Precision", "AP", "0.50", "all", top, self.stats["AP50"]),
                ("Average Precision", "AP", "0.75", "all", top, self.stats["AP75"])]
        rows += [("Average Precision", "AP", "0.50:0.95", a, top, self.stats[self._key("AP", a)]) for a in areas]
        rows += [("Average Recall", "AR", "0.50:0.95", "all", m, self.stats[f"AR{m}"]) for m in p.max_dets]
        rows += [("Average Recall", "AR", "0.50:0.95", a, top, self.stats[self._key("AR", a)]) for a in areas]
        lines.append(f"run {self.run!r}, {self.iou_type}, {len(self.cat_ids)} categories"
                     + ("" if p.use_cats else " (class-agnostic)"))
        for title, short, iou, area, md, v in rows:
            lines.append(f" {title:<18} ({short}) @[ IoU={iou:<9} | area={area:>6} | maxDets={md:>3} ] = {v:0.3f}")
        h = self.at_iou
        score = f", score >= {h.score:g}" if h.score is not None else ""
        lines.append(f"at IoU {h.iou:g}{score}: mAP {h.mAP:0.3f}  mAR {h.mAR:0.3f}  mean F1 {h.f1:0.3f}  "
                     f"precision {h.precision:0.3f}  recall {h.recall:0.3f}  TP {h.tp:,}  FP {h.fp:,}  FN {h.fn:,}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    @staticmethod
    def _key(prefix: str, area: str) -> str:
        return f"{prefix}{_SHORT[area]}" if area in _SHORT else f"{prefix}_{area}"

    def to_dict(self) -> dict[str, Any]:
        h = self.at_iou
        return {"run": self.run, "iou_type": self.iou_type, "coco": self.stats,
                "at_iou": {"iou": h.iou, "score": h.score, "mAP": h.mAP, "mAR": h.mAR, "precision": h.precision,
                           "recall": h.recall, "f1": h.f1, "tp": h.tp, "fp": h.fp, "fn": h.fn},
                "notes": self.notes}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        """One row per category: AP (0.50:0.95), AP50, AP75, AR at the largest maxDets, and TP/FP/FN, P/R/F1 at
        the headline IoU."""
        import polars as pl

        return pl.DataFrame({"category_id": self.cat_ids, **self.per_class})


def _summarize(precision, recall, params: Params, iou_thrs, ap: int, iou_thr=None, area="all", max_dets=100):
    """pycocotools COCOeval.summarize()._summarize, the same numpy operations (np.mean is pairwise)."""
    aind = [i for i, a in enumerate(params.area_ranges) if a == area]
    mind = [i for i, m in enumerate(params.max_dets) if m == max_dets]
    if ap == 1:
        s = precision
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thrs)[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thrs)[0]]
        s = s[:, :, aind, mind]
    return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))


def coco_stats(precision, recall, params: Params, iou_thrs=IOU_THRS) -> dict[str, float]:
    top = params.max_dets[-1]
    summ = lambda *a, **k: _summarize(precision, recall, params, iou_thrs, *a, **k)  # noqa: E731
    stats = {"AP": summ(1, max_dets=top), "AP50": summ(1, iou_thr=0.5, max_dets=top),
             "AP75": summ(1, iou_thr=0.75, max_dets=top)}
    areas = [a for a in params.area_ranges if a != "all"]
    for a in areas:
        stats[EvalResult._key("AP", a)] = summ(1, area=a, max_dets=top)
    for m in params.max_dets:
        stats[f"AR{m}"] = summ(0, max_dets=m)
    for a in areas:
        stats[EvalResult._key("AR", a)] = summ(0, area=a, max_dets=top)
    return stats


def evaluate(workspace: Workspace | str, run: str, params: Params | None = None, iou_type: str = "bbox",
             write_matches: bool = True, on_step: Callable[[str], None] | None = None) -> EvalResult:
    """Evaluate one run of a workspace COCO-exactly and (by default) store its match tables.

    Example:
        >>> r = evaluate("ws", "baseline")          # doctest: +SKIP
        >>> r.stats["AP"], r.at_iou.f1              # doctest: +SKIP
        >>> r.to_polars().sort("ap")                # doctest: +SKIP
    """
    from odfail.match import coco as M
    from odfail.store.workspace import Workspace

    t0 = time.perf_counter()
    M.check_iou_type(iou_type)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    params = params or Params()
    step = on_step or (lambda message: None)
    step("loading")
    # numba's import and its first-call set-up (~0.4 s) overlap the Parquet read, which runs without the GIL
    warm = threading.Thread(target=_warm_kernels, args=(iou_type,), daemon=True)
    warm.start()
    inputs = M.load_inputs(ws, run, params, iou_type)
    warm.join()
    step(f"matching {len(inputs.dt['pred_id']):,} predictions (first run on a machine compiles the kernels)")
    # The headline IoU joins COCO's ten thresholds if it is not one of them (it is then left out of COCO's stats).
    extra = not np.any(IOU_THRS == params.iou)
    thrs = np.append(IOU_THRS, params.iou) if extra else IOU_THRS
    t_head = len(IOU_THRS) if extra else int(np.flatnonzero(IOU_THRS == params.iou)[0])
    m = M.match(inputs, params, thrs)
    precision, recall = m.precision[: len(IOU_THRS)], m.recall[: len(IOU_THRS)]
    stats = coco_stats(precision, recall, params)
    at_iou, per_class = _headline(m, params, thrs, t_head, inputs)
    m.status = None  # (N, A, T) int8, 130 MB at 3.25M predictions: nothing after the headline reads it
    notes = []
    if inputs.gt_area_filled:
        notes.append(f"{inputs.gt_area_filled:,} GT without area: used the box area w*h (pycocotools would fail)")
    if iou_type == "segm" and write_matches:
        notes.append("segm: the match tables (matches, gt_matches, ...) hold bbox matching only; not written")
    elif write_matches:
        step("writing match tables")
        facts = M.image_facts(inputs, m, params.max_dets[-1])
        for column in ("x", "y", "w", "h", "area", "class_rank"):  # not stored: 156 MB at 3.25M predictions
            inputs.dt.pop(column, None)
        M.write_match_tables(ws, run, inputs, m, facts, IOU_THRS)
    if write_matches and _default(params):
        ws.store_summary(run, f"coco {iou_type}", stats)
    step("done")
    return EvalResult(run, iou_type, params, IOU_THRS, inputs.cat_ids if params.use_cats else np.array([-1]),
                      precision, recall, stats, at_iou, per_class, notes, time.perf_counter() - t0)


def _default(params: Params) -> bool:
    """Whether ``params`` evaluate what pycocotools does by default (the headline IoU and score aside)."""
    return (params.area_ranges == DEFAULT_AREAS and params.max_dets == (1, 10, 100) and params.use_cats
            and params.img_ids is None and params.cat_ids is None and np.array_equal(params.rec_thrs, REC_THRS))


def coco_stats_of(ws: Workspace, run: str, iou_type: str = "bbox") -> dict[str, float]:
    """COCO's 12 numbers of a run with pycocotools' default parameters: stored by `evaluate`, else computed
    (and stored)."""
    stored = ws.summary(run, f"coco {iou_type}")
    if stored is not None:
        return stored
    stats = evaluate(ws, run, iou_type=iou_type, write_matches=False).stats
    ws.store_summary(run, f"coco {iou_type}", stats)
    return stats


def _warm_kernels(iou_type: str) -> None:
    from odfail.match.coco import warm

    warm(iou_type)


def _headline(m, params: Params, thrs, t: int, inputs) -> tuple[AtIoU, dict[str, np.ndarray]]:
    a, top = params.all_index, params.max_dets[-1]
    K = m.npig.shape[0]
    kept = m.dt_rank < top
    if params.score is not None:
        kept &= inputs.dt["score"][m.dt_rows] >= params.score
    is_tp, is_fp = m.outcomes(t, a)
    tp_k = np.bincount(m.dt_cat[kept & is_tp], minlength=K).astype(np.int64)
    fp_k = np.bincount(m.dt_cat[kept & is_fp], minlength=K).astype(np.int64)
    n_gt = m.npig[:, a].astype(np.int64)
    fn_k = n_gt - tp_k
    with np.errstate(invalid="ignore", divide="ignore"):
        prec_k = np.where(tp_k + fp_k > 0, tp_k / np.maximum(tp_k + fp_k, 1), 0.0)
        rec_k = np.where(n_gt > 0, tp_k / np.maximum(n_gt, 1), np.nan)
        f1_k = np.where(prec_k + rec_k > 0, 2 * prec_k * rec_k / (prec_k + rec_k), 0.0)
    has_gt = n_gt > 0
    ap_t = m.precision[t, :, :, a, -1]
    ap_k = np.array([ap_t[:, k][ap_t[:, k] > -1].mean() if (ap_t[:, k] > -1).any() else -1.0 for k in range(K)])
    ar_k = m.recall[t, :, a, -1]
    tp, fp, fn = int(tp_k.sum()), int(fp_k.sum()), int(fn_k[has_gt].sum())
    at = AtIoU(
        iou=float(thrs[t]), score=params.score,
        mAP=_summarize(m.precision, m.recall, params, thrs, 1, iou_thr=thrs[t], max_dets=top),
        mAR=_summarize(m.precision, m.recall, params, thrs, 0, iou_thr=thrs[t], max_dets=top),
        precision=tp / (tp + fp) if tp + fp else 0.0, recall=tp / (tp + fn) if tp + fn else 0.0,
        f1=float(f1_k[has_gt].mean()) if has_gt.any() else 0.0, tp=tp, fp=fp, fn=fn)
    full = m.precision[: len(IOU_THRS), :, :, a, -1]
    ap_all = np.array([full[:, :, k][full[:, :, k] > -1].mean() if (full[:, :, k] > -1).any() else -1.0
                       for k in range(K)])
    per_class = {"gt": n_gt, "ap": ap_all, "ap_at_iou": ap_k, "ar_at_iou": ar_k, "tp": tp_k, "fp": fp_k,
                 "fn": fn_k, "precision": prec_k, "recall": rec_k, "f1": f1_k}
    return at, per_class
