"""tidecv's error taxonomy over a workspace: the waterfall (SQL views) over its matching, and dAP (numba).

Data flow: GT and one run (Parquet) -> ``odfail.match.tide`` -> ``tide_matches/<run>.parquet`` -> the views
``prediction_errors`` and ``gt_errors`` (the error type of every prediction and GT, with a ``-- why`` per
branch) -> ``odfail.evaluate._tide_kernels.tide_ap`` (AP with each error type fixed) -> `ErrorsResult`.

Follows tidecv 1.0.1 (``tidecv/quantify.py``, ``ap.py``, ``errors/``) rule for rule; the rules are written
where they are applied. tidecv's choices that differ from COCO and that odfail keeps, to give tidecv's answers:

- its own matching: the 100 best predictions per image over all classes (COCO: per image and class); crowd GT
  are not matched but make predictions inside them (crowd IoU > pos, strict) ignored; IoU ties go to the first
  GT in file order; no area ranges;
- its AP: mean over every class with GT *or with a scored prediction* (a class with predictions but no GT
  scores 0), no tie grouping, precision without COCO's epsilon, one IoU threshold.

Differences from tidecv (deliberate): none in the numbers. tidecv sums class APs in the order classes first
appear, odfail in category id order; the two can differ in the last bit of a float (1e-16).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from odfail.evaluate.taxonomy import SHORT_NAMES, SPECIAL

if TYPE_CHECKING:
    import polars as pl

    from odfail.store.workspace import Workspace

from odfail.match.tide import POS_THRESHOLD

BG_THRESHOLD = 0.1
_CODES = ["TP", *SHORT_NAMES[:5]]  # the kernels' E_* codes, by position


@dataclass(frozen=True)
class ErrorsResult:
    """tidecv's summary of one run, plus per-class detail.

    ap: tidecv's AP at ``pos_threshold`` as a fraction (tidecv prints points = 100x). dap: AP gained by fixing
    each error type alone ("Cls" ... "Miss"), and by the special oracles "FP" and "FN"; fractions.
    counts: errors per type (predictions in crowd regions included, as tidecv counts them).
    per_class: arrays of length K (categories in id order): ``category_id``, ``gt``, ``ap`` (NaN for a
    class tidecv leaves out), ``<type>`` counts and ``dAP_<type>`` (that class's AP gain; NaN likewise).
    duplicates: objects with at least one Dupe error, and the most duplicates on one object.
    """

    run: str
    iou_type: str
    pos_threshold: float
    bg_threshold: float
    ap: float
    dap: dict[str, float]
    counts: dict[str, int]
    per_class: dict[str, np.ndarray]
    duplicates: dict[str, int]
    seconds: float

    def __str__(self) -> str:
        main = SHORT_NAMES
        lines = [f"-- {self.run} --", "",
                 f"{'mask' if self.iou_type == 'segm' else 'bbox'} AP @ {self.pos_threshold * 100:g}: "
                 f"{self.ap * 100:.2f}   "
                 f"(background threshold {self.bg_threshold:g})", ""]
        lines += _table("Main Errors", [["Type", *main],
                                        [" dAP", *(f"{self.dap[t] * 100:6.2f}" for t in main)],
                                        ["count", *(f"{self.counts[t]:,}" for t in main)]])
        lines.append("")
        lines += _table("Special Error", [["Type", "FalsePos", "FalseNeg"],
                                          [" dAP", f"{self.dap['FP'] * 100:6.2f}", f"{self.dap['FN'] * 100:6.2f}"]])
        d = self.duplicates
        lines += ["", f"duplicates: {d['objects']:,} objects detected more than once "
                      f"({self.counts['Dupe']:,} extra predictions, at most {d['most']} on one object)"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou_type": self.iou_type, "pos_threshold": self.pos_threshold,
                "bg_threshold": self.bg_threshold,
                "ap50" if self.pos_threshold == 0.5 else "ap": self.ap, "dAP": self.dap, "counts": self.counts,
                "duplicates": self.duplicates}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(self.per_class)


def _table(title: str, rows: list[list[str]]) -> list[str]:
    """tidecv's plotting.print_table layout."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    divider = "--" + "---".join("-" * w for w in widths) + "-"
    out = [title.rjust((len(divider) - len(title)) // 2 + len(title)), divider.replace("-", "=")]
    for i, r in enumerate(rows):
        out.append("  " + "   ".join(v.rjust(w) for v, w in zip(r, widths)) + "  ")
        if i == 0:
            out.append(divider)
    out.append(divider.replace("-", "="))
    return out


def _check_thresholds(pos: float, bg: float) -> None:
    from odfail.exceptions import WorkspaceError

    if not 0.0 < pos <= 1.0:
        raise WorkspaceError(f"--pos-threshold {pos} must be in (0, 1]")
    if not 0.0 < bg <= pos:
        # bg = 0 would make tidecv call a prediction that overlaps nothing a Loc error on the image's first GT
        # (np.argmax of an all-zero row), whatever its class
        raise WorkspaceError(f"--bg-threshold {bg} must be in (0, pos-threshold]")


def _warm_tide() -> None:
    """Import numba and load the kernels of the errors step from the cache, off the main thread."""
    from odfail._numba import load_cached
    from odfail.evaluate import _tide_kernels
    from odfail.match import tide

    tide.warm()
    load_cached(_tide_kernels.tide_ap)


def set_thresholds(con, pos: float, bg: float | None = None, score: float | None = None,
                   iou_type: str = "bbox") -> None:
    """Set the DuckDB variables the error views read (see sql/views/prediction_errors.sql)."""
    con.execute("set variable pos_threshold = $v", {"v": float(pos)})
    con.execute("set variable iou_type = $v", {"v": iou_type})
    if bg is not None:
        con.execute("set variable bg_threshold = $v", {"v": float(bg)})
    if score is not None:
        con.execute("set variable score_threshold = $v", {"v": float(score)})


def errors(workspace: Workspace | str, run: str, pos_threshold: float = POS_THRESHOLD,
           bg_threshold: float = BG_THRESHOLD, iou_type: str = "bbox",
           on_step: Callable[[str], None] | None = None) -> ErrorsResult:
    """tidecv's error analysis of one run: error types, counts and dAP, equal to ``tidecv.TIDE``'s.

    Matches the run tidecv's way first if the workspace has no ``tide_matches`` for it at ``pos_threshold``.

    Example:
        >>> r = errors("ws", "baseline")                 # doctest: +SKIP
        >>> r.dap["Cls"], r.counts["Miss"]               # doctest: +SKIP
        >>> print(r)                                     # doctest: +SKIP
    """
    from odfail._ids import indexer
    from odfail.match.coco import check_iou_type
    from odfail.match.tide import FACTS_SQL, has_tide_matches, run_constants, tide_facts, write_tide_matches
    from odfail.store.workspace import Workspace

    t0 = time.perf_counter()
    _check_thresholds(pos_threshold, bg_threshold)
    check_iou_type(iou_type)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    step = on_step or (lambda message: None)
    # numba's import and first-call set-up (~0.35 s) overlap DuckDB's start and the reads
    warm = threading.Thread(target=_warm_tide, daemon=True)
    warm.start()
    con = ws.connect()
    writer, failed = None, []
    try:
        if not has_tide_matches(ws, con, run, pos_threshold, iou_type):
            step("matching the tidecv way (first run on a machine compiles the kernels)")
            facts = tide_facts(ws, run, pos_threshold, iou_type)

            writer_con = con.cursor()  # made here: a connection is not to be shared across threads

            def write() -> None:
                try:
                    write_tide_matches(ws, run, pos_threshold, facts, iou_type, writer_con)
                except BaseException as e:  # re-raised below, in the caller's thread
                    failed.append(e)

            # The file is written while the SQL below reads the same rows from memory (a temporary view
            # named like the stored one, which the other views then read).
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            con.register("tide_src", facts)
            con.register("tide_const", run_constants(run, pos_threshold, iou_type))
            con.execute("create temp view tide_matches as "
                        + FACTS_SQL.format(src="tide_src", const="tide_const"))
        step("typing errors (SQL)")
        set_thresholds(con, pos_threshold, bg_threshold, iou_type=iou_type)
        # (con.sql, not con.execute: its result reaches numpy about twice as fast)
        p = con.sql("""select category_id, class_order, score, push_order, ignored, fixes_gt,
                               error_code::TINYINT as code,
                               coalesce(error_category, -1) as error_category,
                               coalesce(error_gt, -1) as error_gt
                        from prediction_errors where run = $run""", params={"run": run}).fetchnumpy()
        g = con.sql("""select category_id, count(*) as n from gt where not coalesce(iscrowd, false)
                       group by category_id""").fetchnumpy()
        cat_ids = np.sort(con.sql("select category_id from categories").fetchnumpy()["category_id"])
    finally:
        if writer is not None:
            writer.join()  # first: its cursor belongs to con, which refuses to close while that is busy
        con.close()
    if failed:
        raise failed[0]
    step("computing dAP")
    warm.join()
    from odfail.evaluate import _tide_kernels
    K = len(cat_ids)
    category_of = indexer(cat_ids)
    k = category_of(p["category_id"])[0]
    code = p["code"].astype(np.int8)
    is_tp = code == _tide_kernels.E_TP
    # GT per class, and what became of them (the arithmetic of the gt_errors view): each TP holds one GT of
    # its class, each fixes_gt row one unmatched GT of error_category; the remaining unmatched GT are Miss
    n_gt = np.bincount(category_of(g["category_id"])[0], weights=g["n"], minlength=K).astype(np.int64)
    n_fn = n_gt - np.bincount(k[is_tp], minlength=K)
    fixing = p["fixes_gt"]
    fix_k = category_of(np.where(fixing, p["error_category"], p["category_id"]))[0]
    n_miss = n_fn - np.bincount(fix_k[fixing], minlength=K)
    ap = _tide_kernels.tide_ap(k, p["class_order"], p["score"], p["push_order"], is_tp, p["ignored"], code, fixing,
                          fix_k, n_gt, n_miss, n_fn, K)
    # tidecv divides by the number of classes left; with none (a fix that empties every class, e.g. the FN
    # oracle of a run without predictions) it fails with ZeroDivisionError, odfail calls that AP 0
    mean = np.array([0.0 if np.isnan(row).all() else row[~np.isnan(row)].sum() / (~np.isnan(row)).sum()
                     for row in ap])
    base = float(mean[_tide_kernels.V_BASE])
    dap = {name: float(max(mean[i + 1] - base, 0.0)) / 100 for i, name in enumerate(SHORT_NAMES)}
    special = (_tide_kernels.V_FP, _tide_kernels.V_FN)
    dap.update({name: float(mean[v] - base) / 100 for name, v in zip(SPECIAL, special)})
    # predictions per (class, code) in one pass: column c holds code c (_CODES: TP, then the five types)
    by_code = np.bincount(k * len(_CODES) + code, minlength=K * len(_CODES)).reshape(K, len(_CODES))
    counts_k = {name: by_code[:, i + 1] for i, name in enumerate(SHORT_NAMES[:5])}
    counts_k["Miss"] = n_miss
    per_class = {"category_id": cat_ids, "gt": n_gt, "ap": ap[_tide_kernels.V_BASE] / 100, **counts_k,
                 **{f"dAP_{n}": (ap[i + 1] - ap[_tide_kernels.V_BASE]) / 100 for i, n in enumerate(SHORT_NAMES)}}
    # duplicates: predictions on an object that another prediction already found
    _, per_object = np.unique(p["error_gt"][code == _tide_kernels.E_DUPE], return_counts=True)
    duplicates = {"objects": len(per_object), "most": int(per_object.max()) if len(per_object) else 0}
    result = ErrorsResult(run, iou_type, float(pos_threshold), float(bg_threshold), base / 100, dap,
                          {n: int(c.sum()) for n, c in counts_k.items()}, per_class, duplicates,
                          time.perf_counter() - t0)
    ws.store_summary(run, summary_kind(pos_threshold, bg_threshold, iou_type), _summary(result))
    step("done")
    return result


def _summary(result: ErrorsResult) -> dict[str, Any]:
    """What `errors` stores of its result for later readers (`errors_summary`): JSON, per-class arrays as lists."""
    return {**result.to_dict(), "per_class": {k: v.tolist() for k, v in result.per_class.items()}}


def summary_kind(pos: float, bg: float, iou_type: str) -> str:
    return f"tide {iou_type} {float(pos):g} {float(bg):g}"


def errors_summary(ws: Workspace, run: str, pos: float = POS_THRESHOLD, bg: float = BG_THRESHOLD,
                   iou_type: str = "bbox") -> dict[str, Any]:
    """`errors`' result as stored JSON (``dAP``, ``counts``, ``per_class`` lists, ...): read if `errors` ran on
    this run with these thresholds, else computed (and stored)."""
    stored = ws.summary(run, summary_kind(pos, bg, iou_type))
    return stored if stored is not None else _summary(errors(ws, run, pos, bg, iou_type))
