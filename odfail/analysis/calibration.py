"""Does a score of 0.9 mean 90 % right? A reliability table over equal-width score bins on [0, 1].

Counted: the predictions COCO counts at the IoU (TP or FP: within the 100 best of their image and class, not on a
crowd region). A score outside [0, 1] (logits are legal input) is reported in ``outside_0_1``, not binned; a score
of exactly 1.0 falls in the last bin. ``precision`` of a bin is its share of TP; ECE = sum over bins of
n_b / N * |precision_b - mean_score_b| over the N binned predictions; MCE = the largest such gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace


def reliability(score: np.ndarray, tp: np.ndarray, bins: int) -> dict[str, Any]:
    """The reliability table of predictions with these scores and TP flags: bins, ece, mce, n, outside_0_1."""
    inside = (score >= 0) & (score <= 1)
    s, hit = score[inside], tp[inside]
    b = np.minimum((s * bins).astype(np.int64), bins - 1)
    n = np.bincount(b, minlength=bins)
    sum_s = np.bincount(b, weights=s, minlength=bins)
    sum_tp = np.bincount(b, weights=hit.astype(np.float64), minlength=bins)
    rows, ece, mce = [], 0.0, 0.0
    for i in range(bins):
        mean = sum_s[i] / n[i] if n[i] else None
        prec = sum_tp[i] / n[i] if n[i] else None
        if n[i]:
            gap = abs(prec - mean)
            ece += n[i] / len(s) * gap
            mce = max(mce, gap)
        rows.append({"lo": i / bins, "hi": (i + 1) / bins, "n": int(n[i]), "mean_score": mean, "precision": prec})
    return {"bins": rows, "ece": ece if len(s) else None, "mce": mce if len(s) else None, "n": int(len(s)),
            "outside_0_1": int((~inside).sum())}


@dataclass(frozen=True)
class CalibrationResult:
    """bins: lo, hi, n, mean_score, precision (None in an empty bin); per_class: category_id, name, n, ece, mce
    (and each class's bins)."""

    run: str
    iou: float
    bins: list[dict[str, Any]]
    ece: float | None
    mce: float | None
    n: int
    outside_0_1: int
    per_class: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou": self.iou, "bins": self.bins, "ece": self.ece, "mce": self.mce, "n": self.n,
                "outside_0_1": self.outside_0_1, "per_class": self.per_class}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(self.bins, schema={"lo": pl.Float64, "hi": pl.Float64, "n": pl.Int64,
                                               "mean_score": pl.Float64, "precision": pl.Float64})

    def __str__(self) -> str:
        f = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
        lines = [f"run {self.run!r}, calibration at IoU {self.iou:g}: ECE {f(self.ece).strip()}, MCE "
                 f"{f(self.mce).strip()} over {self.n:,} predictions"
                 + (f" ({self.outside_0_1:,} scores outside [0, 1] not binned)" if self.outside_0_1 else ""),
                 f"  {'score bin':<13} {'n':>9} {'mean score':>10} {'precision':>10}"]
        for b in self.bins:
            lines.append(f"  [{b['lo']:.2f}, {b['hi']:.2f}{']' if b['hi'] == 1 else ')'}  {b['n']:>9,} "
                         f"{f(b['mean_score']):>10} {f(b['precision']):>10}")
        if self.per_class:
            worst = sorted((c for c in self.per_class if c["ece"] is not None), key=lambda c: -c["ece"])[:10]
            lines.append("  least calibrated classes: " + ", ".join(f"{c['name']} {c['ece']:.3f}" for c in worst))
        return "\n".join(lines)


def calibration(workspace: Workspace | str, run: str, iou: float = 0.5, bins: int = 10, per_class: bool = False
                ) -> CalibrationResult:
    """Reliability of the run's scores at ``iou``: equal-width bins, ECE and MCE, overall and per class.

    Example:
        >>> c = calibration("ws", "baseline", bins=10)    # doctest: +SKIP
        >>> c.ece, c.to_polars()                           # doctest: +SKIP
    """
    from odfail.analysis.classes import class_segments, names
    from odfail.exceptions import WorkspaceError
    from odfail.match.outcomes import outcomes
    from odfail.store.workspace import Workspace

    if bins < 1:
        raise WorkspaceError(f"--bins {bins} must be at least 1")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    o = outcomes(ws, run, (iou,))
    tp, fp = o.tp_fp(iou)
    counted = tp | fp
    score = o.pred["score"]
    overall = reliability(score[counted], tp[counted], bins)
    classes = []
    if per_class:
        name = names(ws)
        off = class_segments(o)
        for k, cat in enumerate(o.cat_ids):
            seg = slice(off[k], off[k + 1])
            c = counted[seg]
            r = reliability(score[seg][c], tp[seg][c], bins)
            classes.append({"category_id": int(cat), "name": name.get(int(cat)), "n": r["n"], "ece": r["ece"],
                            "mce": r["mce"], "outside_0_1": r["outside_0_1"], "bins": r["bins"]})
    return CalibrationResult(run, float(iou), overall["bins"], overall["ece"], overall["mce"], overall["n"],
                             overall["outside_0_1"], classes)
