"""Validate the change: two runs on the same GT side by side, and exactly what got better and what got worse.

COCO's 12 numbers come from `odfail.evaluate` (pycocotools-exact); the headline block, per-class figures and the
found/missed GT from the runs' stored outcomes at the IoU (and score threshold); TIDE's dAP and counts from
`odfail.errors` (matched the tidecv way first where the workspace has not stored that). The GT each run found
and the other missed are in the view ``run_diff`` too (DuckDB variables run_a, run_b, iou_threshold,
score_threshold).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace

PER_CLASS = ("ap", "recall", "precision", "tp", "fp", "fn")


@dataclass(frozen=True)
class CompareResult:
    """coco / headline: KEY -> {"a", "b", "delta"}; per_class: rows sorted by |delta AP| (largest change first);
    errors: {"a": {"dap", "counts"}, "b": ...}; found_by_a_missed_by_b and the reverse: GT counts; images: the
    images that got most worse (new FN + new FP), worst first."""

    a: str
    b: str
    iou: float
    score: float | None
    coco: dict[str, dict[str, float]]
    headline: dict[str, dict[str, float]]
    per_class: pl.DataFrame
    errors: dict[str, dict[str, Any]]
    found_by_a_missed_by_b: int
    found_by_b_missed_by_a: int
    images: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "iou": self.iou, "score": self.score, "coco": self.coco,
                "headline": self.headline, "per_class": self.per_class.to_dicts(), "errors": self.errors,
                "found_by_a_missed_by_b": self.found_by_a_missed_by_b,
                "found_by_b_missed_by_a": self.found_by_b_missed_by_a, "images": self.images.to_dicts()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        import polars as pl

        lines = [f"run {self.a!r} (a) against run {self.b!r} (b) at IoU {self.iou:g}"
                 + (f", score >= {self.score:g}" if self.score is not None else ""),
                 f"  {'':<10} {'a':>9} {'b':>9} {'b - a':>9}"]
        for key, v in {**self.coco, **self.headline}.items():
            fmt = "{:9,d}" if isinstance(v["a"], int) else "{:9.4f}"
            lines.append(f"  {key:<10} {fmt.format(v['a'])} {fmt.format(v['b'])} {fmt.format(v['delta'])}")
        ea, eb = self.errors["a"], self.errors["b"]
        lines.append(f"  {'TIDE dAP':<10} " + "  ".join(f"{k} {ea['dap'][k]:.4f}->{eb['dap'][k]:.4f}"
                                                      for k in ea["dap"]))
        lines.append(f"  {'TIDE count':<10} " + "  ".join(f"{k} {ea['counts'][k]:,}->{eb['counts'][k]:,}"
                                                        for k in ea["counts"]))
        lines.append(f"  GT found by a, missed by b: {self.found_by_a_missed_by_b:,}; found by b, missed by a: "
                     f"{self.found_by_b_missed_by_a:,}")
        with pl.Config(tbl_rows=20, tbl_cols=-1, tbl_width_chars=250, float_precision=3,
                       tbl_hide_dataframe_shape=True):
            lines.append("per class, largest AP change first:")
            lines.append(str(self.per_class.head(20)))
            lines.append("images that got most worse (new FN + new FP):")
            lines.append(str(self.images.head(10)))
        return "\n".join(lines)


def _side_by_side(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"a": a[k], "b": b[k], "delta": b[k] - a[k]} for k in a if a[k] is not None and b[k] is not None}


def headline(o, iou: float, score: float | None) -> dict[str, Any]:
    """The headline block of `odfail evaluate` (area "all", maxDets 100) from stored outcomes."""
    from odfail.analysis.classes import _mean_valid

    t = o.index(iou)
    tp, fp = o.tp_fp(iou, score)
    n_tp, n_fp = int(tp.sum()), int(fp.sum())
    n_fn = int(o.npig.sum()) - n_tp
    return {"mAP": _mean_valid(o.precision[t]), "mAR": _mean_valid(o.recall[t]),
            "precision": n_tp / (n_tp + n_fp) if n_tp + n_fp else 0.0,
            "recall": n_tp / (n_tp + n_fn) if n_tp + n_fn else 0.0, "tp": n_tp, "fp": n_fp, "fn": n_fn}


def compare(workspace: Workspace | str, a: str, b: str, iou: float = 0.5, score: float | None = None
            ) -> CompareResult:
    """Compare run ``b`` (say, the fixed model) with run ``a`` on the same GT.

    Example:
        >>> c = compare("ws", "baseline", "fixed")        # doctest: +SKIP
        >>> c.coco["AP"], c.found_by_a_missed_by_b         # doctest: +SKIP
    """
    import polars as pl

    from odfail.analysis.classes import per_class
    from odfail.evaluate.coco import coco_stats_of
    from odfail.evaluate.tide import errors_summary
    from odfail.exceptions import WorkspaceError
    from odfail.match.outcomes import outcomes
    from odfail.store.workspace import Workspace

    if a == b:
        raise WorkspaceError(f"--run {a} twice: compare needs two different runs")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(a)
    ws.require_run(b)
    oa, ob = outcomes(ws, a, (iou,)), outcomes(ws, b, (iou,))
    coco = _side_by_side(*(coco_stats_of(ws, r) for r in (a, b)))
    head = _side_by_side(headline(oa, iou, score), headline(ob, iou, score))
    ca, cb = (per_class(ws, r, iou, score, error_counts=False).table for r in (a, b))
    keep = ["category_id", "name", "gt", *PER_CLASS]
    both = ca.select(keep).join(cb.select("category_id", *PER_CLASS), on="category_id", suffix="_b")
    both = both.rename({c: f"{c}_a" for c in PER_CLASS}).with_columns(
        (pl.col(f"{c}_b") - pl.col(f"{c}_a")).alias(f"{c}_delta") for c in PER_CLASS)
    both = both.sort(pl.col("ap_delta").abs(), descending=True, nulls_last=True)
    errs = {}
    for side, r in (("a", a), ("b", b)):
        e = errors_summary(ws, r)
        errs[side] = {"dap": e["dAP"], "counts": e["counts"]}
    # GT found by one run and missed by the other (same GT, same stored order)
    fa, fb = oa.found(iou, score), ob.found(iou, score)
    a_only, b_only = fa & ~fb, fb & ~fa
    img = oa.gt["image_id"]
    images = np.unique(np.concatenate([img, oa.pred["image_id"], ob.pred["image_id"]]))
    pos = np.searchsorted(images, img)
    new_fn = np.bincount(pos[a_only], minlength=len(images))
    fixed_fn = np.bincount(pos[b_only], minlength=len(images))
    fp_counts = []
    for o in (oa, ob):
        _, fp = o.tp_fp(iou, score)
        fp_counts.append(np.bincount(np.searchsorted(images, o.pred["image_id"][fp]), minlength=len(images)))
    new_fp = fp_counts[1] - fp_counts[0]
    worse = new_fn + new_fp
    order = np.argsort(-worse, kind="stable")
    order = order[worse[order] > 0][:50]
    image_table = pl.DataFrame({"image_id": images[order], "new_fn": new_fn[order], "fixed_fn": fixed_fn[order],
                                "fp_a": fp_counts[0][order], "fp_b": fp_counts[1][order],
                                "worse_by": worse[order]})
    return CompareResult(a, b, float(iou), score, coco, head, both, errs, int(a_only.sum()), int(b_only.sum()),
                         image_table)
