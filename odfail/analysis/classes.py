"""Which classes are weak: outcomes, AP and the best score threshold per class, and PR curves at any IoU.

Everything here reads a run's stored outcomes (`odfail.match.outcomes`), matched on first use. The COCO numbers
are pycocotools' per class: ``ap`` = mean of ``precision[t, :, k, 0, -1]`` over its entries > -1 at the IoU,
``ap_50_95`` the same over COCO's ten thresholds, ``ar`` = mean of ``recall[:, k, 0, -1]`` (> -1); a class
without GT has none of them (pycocotools: -1; here null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from odfail.match.outcomes import Outcomes
    from odfail.store.workspace import Workspace

MAX_POINTS = 200  # raw operating points kept per class and curve


def _mean_valid(a: np.ndarray) -> float | None:
    """pycocotools' per-class summary: mean of the entries > -1, none when there are none."""
    s = a[a > -1]
    return float(np.mean(s)) if len(s) else None


def class_segments(o: Outcomes) -> np.ndarray:
    """Offsets of each class's predictions in accumulation order: class k is rows ``off[k]:off[k + 1]``.
    Shape: (K + 1,)."""
    return np.searchsorted(o.pred["category_id"], np.append(o.cat_ids, np.iinfo(np.int64).max)).astype(np.int64)


def operating_points(tp: np.ndarray, fp: np.ndarray, score: np.ndarray, npig: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, score) after each counted prediction of one class in accumulation order, at the last
    prediction of each run of equal scores only (a score threshold cannot split a tie)."""
    counted = tp | fp
    ctp = np.cumsum(tp)[counted].astype(np.float64)
    cfp = np.cumsum(fp)[counted].astype(np.float64)
    s = score[counted]
    last = np.ones(len(s), bool)
    last[:-1] = s[1:] != s[:-1]
    ctp, cfp, s = ctp[last], cfp[last], s[last]
    recall = ctp / npig if npig else np.zeros(len(ctp))
    precision = ctp / np.maximum(ctp + cfp, 1)
    return recall, precision, s


def _best_f1(recall: np.ndarray, precision: np.ndarray, score: np.ndarray) -> tuple[float, float | None]:
    if not len(recall):
        return 0.0, None
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(recall + precision > 0, 2 * recall * precision / (recall + precision), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(score[i])


@dataclass(frozen=True)
class PerClassResult:
    """One row per category: outcomes at the IoU (and score threshold), COCO's AP/AR and the best-F1 threshold.

    table columns: category_id, name, gt (non-crowd), predictions (score >= score), tp, fp, fn, precision,
    recall, f1, ap, ap_50_95, ar, best_f1, best_f1_threshold, and the TIDE error counts (Cls ... Miss) when
    `odfail errors` has run at 0.5.
    """

    run: str
    iou: float
    score: float | None
    table: pl.DataFrame

    def __str__(self) -> str:
        import polars as pl

        score = f", score >= {self.score:g}" if self.score is not None else ""
        head = f"run {self.run!r}, per class at IoU {self.iou:g}{score} (weakest AP first)"
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=250, float_precision=3,
                       tbl_hide_dataframe_shape=True):
            return head + "\n" + str(self.table.sort("ap", nulls_last=True))

    def to_polars(self) -> pl.DataFrame:
        return self.table

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou": self.iou, "score": self.score, "classes": self.table.to_dicts()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def names(ws: Workspace) -> dict[int, str]:
    return dict(ws.sql("select category_id, name from categories").iter_rows())


def per_class(workspace: Workspace | str, run: str, iou: float = 0.5, score: float | None = None,
              error_counts: bool = True) -> PerClassResult:
    """Precision, recall and outcome counts per class at one IoU, with COCO's AP and AR per class.

    Example:
        >>> r = per_class("ws", "baseline", iou=0.5)          # doctest: +SKIP
        >>> r.to_polars().sort("recall").head(5)               # doctest: +SKIP
    """
    import polars as pl

    from odfail.match.outcomes import outcomes
    from odfail.match.params import IOU_THRS
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    o = outcomes(ws, run, (iou,))
    t = o.index(iou)
    coco = [o.index(x) for x in IOU_THRS]
    off = class_segments(o)
    tp, fp = o.tp_fp(iou, score)
    raw_tp, raw_fp = o.tp_fp(iou)
    above = np.ones(len(tp), bool) if score is None else o.pred["score"] >= score
    rows = []
    for k, cat in enumerate(o.cat_ids):
        seg = slice(off[k], off[k + 1])
        n_tp, n_fp, n_gt = int(tp[seg].sum()), int(fp[seg].sum()), int(o.npig[k])
        precision = n_tp / (n_tp + n_fp) if n_tp + n_fp else 0.0
        recall = n_tp / n_gt if n_gt else None
        f1 = (2 * precision * recall / (precision + recall) if recall and precision + recall > 0 else 0.0)
        r, p, s = operating_points(raw_tp[seg], raw_fp[seg], o.pred["score"][seg], n_gt)
        best, at = _best_f1(r, p, s) if n_gt else (None, None)
        rows.append({"category_id": int(cat), "gt": n_gt, "predictions": int(above[seg].sum()), "tp": n_tp,
                     "fp": n_fp, "fn": n_gt - n_tp, "precision": precision, "recall": recall,
                     "f1": f1 if n_gt else None,
                     "ap": _mean_valid(o.precision[t, :, k]),
                     "ap_50_95": _mean_valid(o.precision[coco][:, :, k]),
                     "ar": _mean_valid(o.recall[coco, k]), "best_f1": best, "best_f1_threshold": at})
    table = pl.DataFrame(rows, schema={"category_id": pl.Int64, "gt": pl.Int64, "predictions": pl.Int64,
                                       "tp": pl.Int64, "fp": pl.Int64, "fn": pl.Int64, "precision": pl.Float64,
                                       "recall": pl.Float64, "f1": pl.Float64, "ap": pl.Float64,
                                       "ap_50_95": pl.Float64, "ar": pl.Float64, "best_f1": pl.Float64,
                                       "best_f1_threshold": pl.Float64})
    name = names(ws)
    table = table.with_columns(pl.col("category_id").replace_strict(name, default=None, return_dtype=pl.String)
                               .alias("name")).select("category_id", "name", pl.exclude("category_id", "name"))
    errors = _error_counts(ws, run) if error_counts else None
    if errors is not None:
        table = table.join(errors, on="category_id", how="left").with_columns(
            pl.col(c).fill_null(0) for c in errors.columns if c != "category_id")
    return PerClassResult(run, float(iou), score, table)


def _error_counts(ws: Workspace, run: str) -> pl.DataFrame | None:
    """TIDE error counts per class (tidecv's defaults: pos 0.5, bg 0.1, boxes) where `odfail errors` ran."""
    import polars as pl

    from odfail.evaluate.taxonomy import SHORT_NAMES
    from odfail.evaluate.tide import BG_THRESHOLD, POS_THRESHOLD, summary_kind

    stored = ws.summary(run, summary_kind(POS_THRESHOLD, BG_THRESHOLD, "bbox"))
    if stored is None:
        return None
    per = stored["per_class"]
    return pl.DataFrame({"category_id": per["category_id"], **{n: per[n] for n in SHORT_NAMES}},
                        schema_overrides={n: pl.Int64 for n in ["category_id", *SHORT_NAMES]})


@dataclass(frozen=True)
class PRResult:
    """Precision-recall curves of one run at one IoU: per class and over all classes.

    classes: dicts with category_id, name, gt, ap, precision_101 (101 numbers, -1 without GT: pycocotools'
    ``precision[t, :, k, 0, -1]``), points (recall, precision, score after each counted prediction, at most
    MAX_POINTS, evenly spaced along the curve). all: the mean of the per-class 101-point curves over classes
    with GT and its AP (pycocotools' mAP at the IoU).
    """

    run: str
    iou: float
    classes: list[dict[str, Any]]
    all: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou": self.iou, "classes": self.classes, "all": self.all}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_polars(self) -> pl.DataFrame:
        """The 101-point curves in long form: category_id (null = all classes), recall, precision."""
        import polars as pl

        from odfail.match.params import REC_THRS

        parts = [pl.DataFrame({"category_id": [c["category_id"]] * len(REC_THRS), "recall": REC_THRS,
                               "precision": c["precision_101"]}) for c in self.classes]
        parts.append(pl.DataFrame({"category_id": [None] * len(REC_THRS), "recall": REC_THRS,
                                   "precision": self.all["precision_101"]}, schema_overrides={
                                       "category_id": pl.Int64}))
        return pl.concat(parts)

    def __str__(self) -> str:
        lines = [f"run {self.run!r}, PR curves at IoU {self.iou:g}: mAP {self.all['ap']:.3f} "
                 f"over {sum(c['gt'] > 0 for c in self.classes)} classes with GT"]
        lines.append(f"  {'class':<24} {'GT':>6} {'AP':>6}  precision at recall .1 .3 .5 .7 .9")
        for c in sorted(self.classes, key=lambda c: -1 if c["ap"] is None else c["ap"]):
            p = c["precision_101"]
            ap = "   -  " if c["ap"] is None else f"{c['ap']:6.3f}"
            lines.append(f"  {str(c['name'])[:24]:<24} {c['gt']:>6} {ap}  "
                         + " ".join(f"{p[i]:.2f}" if p[i] >= 0 else "  - " for i in (10, 30, 50, 70, 90)))
        return "\n".join(lines)


def _decimate(n: int, keep: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``keep`` points spread evenly over n, the first and last included."""
    if n <= keep:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, keep)).astype(np.int64))


def pr_curves(workspace: Workspace | str, run: str, iou: float = 0.5, classes: list[str | int] | None = None
              ) -> PRResult:
    """Per-class and all-class PR curves at ``iou`` (0.05 ... 0.95), COCO's 101-point interpolation plus the raw
    operating points. ``classes``: names or ids to keep (all by default).

    Example:
        >>> pr = pr_curves("ws", "baseline", iou=0.3, classes=["person"])   # doctest: +SKIP
        >>> pr.classes[0]["ap"], len(pr.classes[0]["points"])             # doctest: +SKIP
    """
    from odfail.match.outcomes import outcomes
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    o = outcomes(ws, run, (iou,))
    name = names(ws)
    wanted = resolve_classes(classes, name) if classes else None
    t = o.index(iou)
    off = class_segments(o)
    tp, fp = o.tp_fp(iou)
    out = []
    for k, cat in enumerate(o.cat_ids):
        if wanted is not None and int(cat) not in wanted:
            continue
        seg = slice(off[k], off[k + 1])
        r, p, s = operating_points(tp[seg], fp[seg], o.pred["score"][seg], int(o.npig[k]))
        keep = _decimate(len(r))
        out.append({"category_id": int(cat), "name": name.get(int(cat)), "gt": int(o.npig[k]),
                    "ap": _mean_valid(o.precision[t, :, k]), "precision_101": o.precision[t, :, k].tolist(),
                    "points": [{"recall": float(r[i]), "precision": float(p[i]), "score": float(s[i])}
                               for i in keep]})
    has_gt = o.npig > 0
    curve = o.precision[t][:, has_gt].mean(axis=1) if has_gt.any() else np.full(o.precision.shape[1], -1.0)
    return PRResult(run, float(iou), out, {"ap": _mean_valid(o.precision[t]) if has_gt.any() else None,
                                           "precision_101": curve.tolist()})


def resolve_classes(classes: list[str | int], name: dict[int, str]) -> set[int]:
    """Class names or ids -> ids; an unknown one is refused with the ones that exist."""
    from odfail.exceptions import WorkspaceError

    by_name = {v: k for k, v in name.items()}
    ids = set()
    for c in classes:
        text = str(c)
        if text in by_name:
            ids.add(by_name[text])
        elif text.lstrip("-").isdigit() and int(text) in name:
            ids.add(int(text))
        else:
            raise WorkspaceError(f"--class {text}: no such class name or id in the workspace")
    return ids
