"""tidecv's error taxonomy over a workspace: its matching (numba), the waterfall (SQL views), dAP (numba).

Data flow: GT and one run (Parquet) -> ``_tide_kernels.tide_match`` -> ``tide_matches/<run>.parquet`` -> the views
``prediction_errors`` and ``gt_errors`` (the error type of every prediction and GT, with a ``-- why`` per
branch) -> ``_tide_kernels.tide_ap`` (AP with each error type fixed) -> `ErrorsResult`.

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

from odfail.taxonomy import SHORT_NAMES, SPECIAL

if TYPE_CHECKING:
    import polars as pl

    from odfail.workspace import Workspace

POS_THRESHOLD, BG_THRESHOLD = 0.5, 0.1
MAX_DETS = 100  # tidecv Data(max_dets=100) for COCO files: per image, all classes together
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


# tide_matches rows from the kernel's columns (`src`) and the run's constants (`const`): facts exist only for the
# predictions tidecv looks at, and only where the image has regular GT. Used for the Parquet file, and in
# process as a temporary view while that file is being written.
_FACTS_SQL = """
    select c.run, c.iou_type, c.pos_threshold, pred_id, image_id, category_id, score,
           push_order >= 0 as kept, image_rank::INTEGER as image_rank, nullif(push_order, -1) as push_order,
           case when push_order >= 0 then class_order end as class_order,
           case when matched then gt_id end as gt_id,
           case when push_order >= 0 then ignored end as ignored,
           case when push_order >= 0 then image_has_gt end as image_has_gt,
           case when image_has_gt then iou_same end as iou_same,
           case when image_has_gt then gt_same end as gt_same,
           case when image_has_gt then iou_other end as iou_other,
           case when image_has_gt then gt_other end as gt_other,
           case when image_has_gt then category_other end as category_other,
           case when image_has_gt then iou_dupe end as iou_dupe,
           case when image_has_gt then gt_dupe end as gt_dupe,
           case when image_has_gt then iou_any end as iou_any
    from {src}, {const} as c"""


def tide_facts(ws: Workspace, run: str, pos: float = POS_THRESHOLD, iou_type: str = "bbox") -> dict[str, np.ndarray]:
    """tidecv's matching of one run at one positive threshold: the columns of ``tide_matches`` (see
    ``_FACTS_SQL``), one entry per prediction in stored order. iou_type "segm" is tidecv's mask mode."""
    from odfail.evaluate import Params
    from odfail.match import _indexer, load_inputs

    inputs = load_inputs(ws, run, Params(), iou_type, cross_class=True)
    gt, dt = inputs.gt, inputs.dt
    # tidecv walks images in the GT file's order, which is the order of the stored images table
    in_file = inputs.img_file_order
    sorted_ids = inputs.img_ids
    file_pos = np.empty(len(in_file), dtype=np.int64)
    image_of = _indexer(sorted_ids)
    file_pos[image_of(in_file)[0]] = np.arange(len(in_file))
    g_img = file_pos[image_of(gt["image_id"])[0]]
    d_img = file_pos[image_of(dt["image_id"])[0]]
    from odfail import _tide_kernels  # numba: imported late, so that a warm-up thread can load it meanwhile

    (image_rank, push_order, gt_row, ignored, has_gt, iou_same, gt_same, iou_other, gt_other, iou_dupe, gt_dupe,
     iou_any) = _tide_kernels.tide_match(gt["x"], gt["y"], gt["w"], gt["h"], g_img, gt["category_id"], gt["iscrowd"],
                                    gt["file_idx"], dt["x"], dt["y"], dt["w"], dt["h"], d_img, dt["category_id"],
                                    dt["score"], dt["pred_id"], len(in_file), float(pos), MAX_DETS,
                                    inputs.masks)

    def ids(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
        return table[np.maximum(rows, 0)] if len(table) else np.zeros(len(rows), dtype=np.int64)

    # get_ap's order within a class: score descending, then processing order. With the images of the GT file
    # in id order that is the order of ingest's class_rank (score, image id, file order); otherwise sort.
    if np.all(in_file[1:] > in_file[:-1]):
        class_order = dt["class_rank"]
    else:
        kept = np.flatnonzero(push_order >= 0)
        by = kept[np.lexsort((push_order[kept], -dt["score"][kept], dt["category_id"][kept]))]
        cat = dt["category_id"][by]
        starts = np.r_[0, np.flatnonzero(cat[1:] != cat[:-1]) + 1]
        pos_in = np.arange(len(by)) - np.repeat(starts, np.diff(np.r_[starts, len(by)]))
        class_order = np.full(len(push_order), -1, dtype=np.int64)
        class_order[by] = pos_in
    return {"pred_id": dt["pred_id"], "image_id": dt["image_id"], "category_id": dt["category_id"],
            "score": dt["score"], "image_rank": image_rank, "push_order": push_order, "class_order": class_order,
            "matched": gt_row >= 0, "gt_id": ids(gt_row, gt["gt_id"]), "ignored": ignored, "image_has_gt": has_gt,
            "iou_same": iou_same, "gt_same": ids(gt_same, gt["gt_id"]), "iou_other": iou_other,
            "gt_other": ids(gt_other, gt["gt_id"]), "category_other": ids(gt_other, gt["category_id"]),
            "iou_dupe": iou_dupe, "gt_dupe": ids(gt_dupe, gt["gt_id"]), "iou_any": iou_any}


def _const(run: str, pos: float, iou_type: str) -> dict[str, np.ndarray]:
    return {"run": np.array([run], dtype=object), "iou_type": np.array([iou_type], dtype=object),
            "pos_threshold": np.array([float(pos)])}


def write_tide_matches(ws: Workspace, run: str, pos: float, facts: dict[str, np.ndarray],
                       iou_type: str = "bbox", con=None) -> None:
    """Store `tide_facts` in ``tide_matches/<run>.parquet`` (rows in no particular order), keeping the rows of
    other thresholds and types.
    ``con``: a connection to write through, closed when done (a cursor of the caller's database: both then share
    one thread pool and its memory); by default `Workspace.engine`."""
    import os

    from odfail.workspace import DERIVED_PARQUET, _quote

    target = ws.table_path("tide_matches", run)
    tmp = target.with_suffix(f".parquet.{os.getpid()}.tmp")
    others = (f"select * from read_parquet({_quote(str(target))}) "
              "where not (pos_threshold = $pos and iou_type = $iou_type) union all " if target.exists() else "")
    con = con or ws.engine()
    try:
        # Rows in no particular order: DuckDB then writes row groups as they come, instead of holding them back
        # to keep the input's order (~70 MB less at 325k predictions, and faster). Uncompressed: snappy halved
        # the file (37 -> 15 MB at 325k predictions) but doubled the CPU of reading it, which is most of what
        # the error views cost (the prediction_errors query: 50 instead of 60 ms).
        con.execute("set session preserve_insertion_order = false")
        con.register("src", facts)
        con.register("const", _const(run, pos, iou_type))
        con.execute(f"copy ({others} {_FACTS_SQL.format(src='src', const='const')}) to {_quote(str(tmp))} "
                    f"({DERIVED_PARQUET}, compression uncompressed)",
                    {"pos": float(pos), "iou_type": iou_type} if others else None)
    finally:
        con.close()
    os.replace(tmp, target)


def match_tide(ws: Workspace, run: str, pos: float = POS_THRESHOLD, iou_type: str = "bbox") -> None:
    """Run tidecv's matching on one run at one positive threshold and store it in ``tide_matches``."""
    write_tide_matches(ws, run, pos, tide_facts(ws, run, pos, iou_type), iou_type)


def _warm_tide() -> None:
    """Import numba and load this module's kernels from the cache, off the main thread."""
    from odfail import _tide_kernels
    from odfail._numba import load_cached

    load_cached(_tide_kernels.tide_match, _tide_kernels.tide_ap)


def has_tide_matches(ws: Workspace, con, run: str, pos: float, iou_type: str) -> bool:
    """Whether the workspace stores tidecv's matching of this run at (pos, iou_type). Reads the run's file
    alone, if there is one (``con``: any DuckDB connection), not the view over every run's (~20 ms)."""
    from odfail.workspace import _quote

    path = ws.table_path("tide_matches", run)
    if not path.exists():
        return False
    return bool(con.execute(f"""select count(*) from read_parquet({_quote(str(path))})
                                where pos_threshold = $pos and iou_type = $iou_type""",
                            {"pos": float(pos), "iou_type": iou_type}).fetchall()[0][0])


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
    from odfail.match import _indexer, check_iou_type
    from odfail.workspace import Workspace

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
            con.register("tide_const", _const(run, pos_threshold, iou_type))
            con.execute("create temp view tide_matches as "
                        + _FACTS_SQL.format(src="tide_src", const="tide_const"))
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
    from odfail import _tide_kernels
    K = len(cat_ids)
    category_of = _indexer(cat_ids)
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
    step("done")
    return ErrorsResult(run, iou_type, float(pos_threshold), float(bg_threshold), base / 100, dap,
                        {n: int(c.sum()) for n, c in counts_k.items()}, per_class, duplicates,
                        time.perf_counter() - t0)
