"""Class confusion: the (K+1) x (K+1) matrix with background, from the ``confusion`` view.

Rows are the actual class (the GT's; background for a prediction that found no object), columns the predicted
class (background for a GT nothing found). The matching is tidecv's at IoU ``iou`` (see
``sql/views/confusion.sql`` for the one-to-one rule), so a workspace that has `odfail errors` at that threshold
reuses its ``tide_matches``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace

BACKGROUND = "background"


@dataclass(frozen=True)
class ConfusionResult:
    """matrix: Shape (L + 1, L + 1), counts; rows actual, columns predicted; the last row and column are
    background. labels: the L class (or supercategory) names, then "background".
    top_pairs: the most frequent (actual, predicted, count) confusions between two different labels."""

    run: str
    iou: float
    score: float | None
    by: str
    labels: list[str]
    matrix: np.ndarray
    top_pairs: list[tuple[str, str, int]]

    def __str__(self) -> str:
        score = f", score >= {self.score:g}" if self.score is not None else ""
        lines = [f"run {self.run!r}: confusion by {self.by} at IoU {self.iou:g}{score} "
                 f"(rows: actual, columns: predicted)"]
        m, n = self.matrix, len(self.labels)
        found = np.trace(m[:-1, :-1])
        lines.append(f"correct {found:,}   confused {m[:-1, :-1].sum() - found:,}   "
                     f"background predictions {m[-1, :-1].sum():,}   missed objects {m[:-1, -1].sum():,}")
        lines.append("")
        lines.append("most confused pairs (actual -> predicted):")
        width = max((len(a) for a, _, _ in self.top_pairs), default=0)
        lines += [f"  {a:>{width}} -> {p:<20} {c:,}" for a, p, c in self.top_pairs] or ["  none"]
        if n <= 16:
            lines.append("")
            short = [lab[:11] for lab in self.labels]
            lines.append(" " * 12 + "".join(f"{s:>12}" for s in short))
            for i, s in enumerate(short):
                lines.append(f"{s:>11} " + "".join(f"{int(v):>12}" for v in m[i]))
        else:
            lines.append(f"({n} x {n} matrix: use --format json or csv for all cells)")
        return "\n".join(lines)

    def to_polars(self) -> pl.DataFrame:
        """The matrix as a table: one row per actual label, one column per predicted label."""
        import polars as pl

        return pl.DataFrame({"actual": self.labels, **{p: self.matrix[:, j] for j, p in enumerate(self.labels)}})

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou": self.iou, "score": self.score, "by": self.by, "labels": self.labels,
                "matrix": self.matrix.tolist(),
                "top_pairs": [{"actual": a, "predicted": p, "count": c} for a, p, c in self.top_pairs]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def confusion(workspace: Workspace | str, run: str, iou: float = 0.5, score: float | None = None,
              by: str = "class", top: int = 10, iou_type: str = "bbox") -> ConfusionResult:
    """Confusion matrix of one run at IoU ``iou`` among predictions with score >= ``score``.

    Example:
        >>> c = confusion("ws", "baseline", iou=0.5, score=0.3)     # doctest: +SKIP
        >>> c.top_pairs[:3]                                         # doctest: +SKIP
    """
    from odfail.evaluate.tide import set_thresholds
    from odfail.exceptions import WorkspaceError
    from odfail.match.coco import check_iou_type
    from odfail.match.tide import has_tide_matches, match_tide
    from odfail.store.workspace import Workspace

    if by not in ("class", "supercategory"):
        raise WorkspaceError(f"--by {by!r}: expected class or supercategory")
    if not 0.0 < iou <= 1.0:
        raise WorkspaceError(f"--iou {iou} must be in (0, 1]")
    check_iou_type(iou_type)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    con = ws.connect()
    try:
        if not has_tide_matches(ws, con, run, iou, iou_type):
            con.close()
            match_tide(ws, run, iou, iou_type)
            con = ws.connect()
        set_thresholds(con, iou, score=score, iou_type=iou_type)
        cells = con.execute("""select actual_category_id, predicted_category_id, n from confusion
                               where run = $run""", {"run": run}).fetchall()
        cats = con.execute("select category_id, name, supercategory from categories").fetchall()
    finally:
        con.close()
    # background is a null category id; a category named "background" stays a class of its own
    label_of = {c: (name if by == "class" else (sup if sup is not None else "(none)")) for c, name, sup in cats}
    names = sorted(set(label_of.values()), key=lambda s: (s.lower(), s))
    if by == "class":
        names = [label_of[c] for c in sorted(label_of)]
    labels = [*names, BACKGROUND]
    index = {c: names.index(label) for c, label in label_of.items()} if by != "class" else {
        c: i for i, c in enumerate(sorted(label_of))}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for actual, predicted, n in cells:
        i = index[actual] if actual is not None else len(names)
        j = index[predicted] if predicted is not None else len(names)
        matrix[i, j] += n
    off = [(matrix[i, j], i, j) for i in range(len(names)) for j in range(len(names)) if i != j and matrix[i, j]]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    pairs = [(labels[i], labels[j], int(n)) for n, i, j in off[:top]]
    return ConfusionResult(run, float(iou), score, by, labels, matrix, pairs)
