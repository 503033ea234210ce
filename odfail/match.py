"""Arrow columns -> grouped numpy views -> numba kernels -> match facts (and the match tables).

Layout handed to the kernels (see ``odfail._kernels``):

- predictions sorted by (category, image, -score, pred_id) -- within an image and category this is
  pycocotools' stable mergesort on -score; across images of a category it is the order of ``p.imgIds``, which
  accumulate() concatenates before its own stable sort;
- GT sorted by (category, image, file order): the order ``COCO.getAnnIds`` returns them in;
- groups = the non-empty (category, image) pairs, as offsets into both arrays.

Class-agnostic evaluation (pycocotools ``useCats=0``) puts everything in one category; within an image pycocotools
then lists predictions and GT category by category (in ``p.catIds`` order), so the category index becomes the
next sort key.

Ingest stores both tables in this order already, so the sorts only run for class-agnostic evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odfail.evaluate import Params
    from odfail.workspace import Workspace


@dataclass
class Inputs:
    """Columns of one run and the GT as numpy arrays (file order), plus the evaluated ids."""

    img_ids: np.ndarray  # sorted unique image ids evaluated (pycocotools p.imgIds)
    cat_ids: np.ndarray  # sorted unique category ids evaluated (p.catIds)
    gt: dict[str, np.ndarray]
    dt: dict[str, np.ndarray]
    gt_area_filled: int  # GT whose missing area was replaced by w*h


@dataclass
class Matches:
    """Kernel outputs, rows in the grouped order described in the module docstring."""

    gt_rows: np.ndarray  # (N_gt,) index into Inputs.gt of each grouped GT row
    dt_rows: np.ndarray  # (N_dt,) index into Inputs.dt of each grouped prediction row
    dt_rank: np.ndarray  # (N_dt,) rank in its (category, image) group
    dt_cat: np.ndarray  # (N_dt,) category index (0 when class-agnostic)
    status: np.ndarray  # (N_dt, A, T) int8, see _kernels
    dt_match: np.ndarray  # (N_dt, T) grouped GT row or -1, at the "all" area range
    gt_match: np.ndarray  # (N_gt, T) grouped prediction row or -1 (row i of gt_match is GT gt_rows[i])
    npig: np.ndarray  # (K, A) non-ignored GT per category and area range
    precision: np.ndarray  # (T, R, K, A, M)
    recall: np.ndarray  # (T, K, A, M)


GT_COLUMNS = ["gt_id", "file_idx", "image_id", "category_id", "x", "y", "w", "h", "area", "iscrowd"]
PRED_COLUMNS = ["pred_id", "image_id", "category_id", "x", "y", "w", "h", "score", "area", "class_rank"]


def _column(table, name: str, fill=None) -> np.ndarray:
    import pyarrow.compute as pc

    col = table.column(name)
    if fill is not None and col.null_count:
        col = pc.fill_null(col, fill)
    return col.to_numpy()


def load_inputs(ws: Workspace, run: str, params: Params) -> Inputs:
    """Read the GT and one run from Parquet (Arrow buffers, no copies where the column has no nulls)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from odfail.errors import WorkspaceError

    gtt = pq.read_table(ws.table_path("gt"), columns=GT_COLUMNS)
    dtt = pq.read_table(ws.table_path("predictions", run), columns=PRED_COLUMNS)
    if dtt.column("x").null_count:
        raise WorkspaceError(f"run {run!r} has predictions without a bbox (mask-only results); bbox evaluation "
                             "of those needs the box of the decoded mask, which odfail does not compute yet")
    gt = {c: _column(gtt, c) for c in ("gt_id", "file_idx", "image_id", "category_id", "x", "y", "w", "h")}
    dt = {c: _column(dtt, c) for c in PRED_COLUMNS}
    gt["iscrowd"] = _column(gtt, "iscrowd", False).astype(np.uint8)
    # pycocotools needs `area` on every GT (KeyError otherwise); odfail falls back to the box area.
    area = gtt.column("area")
    gt["area"] = pc.if_else(pc.is_null(area), pc.multiply(gtt.column("w"), gtt.column("h")), area).to_numpy()
    img_ids = np.unique(pq.read_table(ws.table_path("images"), columns=["image_id"]).column(0).to_numpy())
    cat_ids = np.unique(pq.read_table(ws.table_path("categories"), columns=["category_id"]).column(0).to_numpy())
    if params.img_ids is not None:
        img_ids = np.unique(np.asarray(params.img_ids, dtype=np.int64))
    if params.cat_ids is not None:
        cat_ids = np.unique(np.asarray(params.cat_ids, dtype=np.int64))
    return Inputs(img_ids, cat_ids, gt, dt, int(area.null_count))


def _index(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in sorted ``ids`` and whether it is there at all."""
    if not len(ids):
        return np.zeros(len(values), np.int64), np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return pos, ids[pos] == values


def _in_eval_order(key: np.ndarray, *ties: np.ndarray) -> bool:
    """Whether rows are already sorted by (key, *ties) lexicographically, ties strictly increasing at the end.
    Ingest stores predictions and GT in this order, so evaluation normally sorts nothing."""
    if len(key) < 2:
        return True
    dk = np.diff(key)
    if (dk < 0).any():
        return False
    same = dk == 0
    for tie in ties:
        dt = np.diff(tie)
        if (same & (dt < 0)).any():
            return False
        same &= dt == 0
    return not same.any()


def match(inputs: Inputs, params: Params, iou_thrs: np.ndarray) -> Matches:
    """Group, match and accumulate. ``iou_thrs`` may hold one extra threshold beyond COCO's ten."""
    from odfail import _kernels

    gt, dt = inputs.gt, inputs.dt
    n_img, n_cat = len(inputs.img_ids), len(inputs.cat_ids)
    g_img, g_ok = _index(inputs.img_ids, gt["image_id"])
    g_cat, g_ok2 = _index(inputs.cat_ids, gt["category_id"])
    d_img, d_ok = _index(inputs.img_ids, dt["image_id"])
    d_cat, d_ok2 = _index(inputs.cat_ids, dt["category_id"])
    g_sel = np.flatnonzero(g_ok & g_ok2)
    d_sel = np.flatnonzero(d_ok & d_ok2)
    if len(g_sel) < len(g_ok):
        g_img, g_cat = g_img[g_sel], g_cat[g_sel]
    if len(d_sel) < len(d_ok):
        d_img, d_cat = d_img[d_sel], d_cat[d_sel]
    score, pred_id = dt["score"][d_sel], dt["pred_id"][d_sel]
    if params.use_cats:
        g_key = g_cat * n_img + g_img
        d_key = d_cat * n_img + d_img
        g_order = None if _in_eval_order(g_key, gt["file_idx"][g_sel]) else np.lexsort(
            (gt["file_idx"][g_sel], g_key))
        d_order = None if _in_eval_order(d_key, -score, pred_id) else np.lexsort((pred_id, -score, d_key))
        cat_of_row = d_cat
    else:
        # useCats=0: one category; within an image pycocotools lists rows category by category (p.catIds order)
        g_key, d_key = g_img.astype(np.int64), d_img.astype(np.int64)
        g_order = np.lexsort((gt["file_idx"][g_sel], g_cat, g_img))
        d_order = np.lexsort((pred_id, d_cat, -score, d_img))
        cat_of_row = np.zeros_like(d_cat)
    gt_rows = g_sel if g_order is None else g_sel[g_order]
    dt_rows = d_sel if d_order is None else d_sel[d_order]
    if g_order is not None:
        g_key = g_key[g_order]
    if d_order is not None:
        d_key, cat_of_row = d_key[d_order], cat_of_row[d_order]
    identity_g = len(gt_rows) == len(gt["gt_id"]) and g_order is None
    identity_d = len(dt_rows) == len(dt["pred_id"]) and d_order is None
    G = {c: (gt[c] if identity_g else gt[c][gt_rows]) for c in ("x", "y", "w", "h", "area", "iscrowd", "gt_id")}
    D = {c: (dt[c] if identity_d else dt[c][dt_rows]) for c in ("x", "y", "w", "h", "area", "score")}
    groups, gt_off, dt_off = _kernels.group_offsets(g_key.astype(np.int64), d_key.astype(np.int64))
    lo = np.array([r[0] for r in params.area_ranges.values()], dtype=np.float64)
    hi = np.array([r[1] for r in params.area_ranges.values()], dtype=np.float64)
    max_dets = np.array(params.max_dets, dtype=np.int64)
    status, dt_match, gt_match, packed = _kernels.match_groups(
        G["x"], G["y"], G["w"], G["h"], G["area"], G["iscrowd"], G["gt_id"],
        D["x"], D["y"], D["w"], D["h"], D["area"], gt_off, dt_off,
        iou_thrs, lo, hi, int(max_dets[-1]), params.all_index, min(len(groups), 64))

    dt_rank = packed >> 8
    n_key = n_cat if params.use_cats else 1
    key_cat = cat_of_row if params.use_cats else np.zeros(len(dt_rows), np.int64)
    cat_off = np.searchsorted(key_cat, np.arange(n_key + 1)).astype(np.int64)
    # non-ignored GT per category and area range (evaluateImg's gtIgnore == 0), for recall's denominator
    g_cat_sorted = (g_key // n_img) if params.use_cats else np.zeros(len(gt_rows), np.int64)
    npig = np.zeros((n_key, len(lo)), dtype=np.float64)
    for a in range(len(lo)):
        keep = (G["iscrowd"] == 0) & (G["area"] >= lo[a]) & (G["area"] <= hi[a])
        npig[:, a] = np.bincount(g_cat_sorted[keep], minlength=n_key)
    # class_rank (from ingest) is the category's accumulation order; class-agnostic order differs: sort instead
    rank = dt["class_rank"][dt_rows] if params.use_cats else np.zeros(0, np.int64)
    precision, recall = _kernels.accumulate(status, packed, D["score"], rank, cat_off, npig, max_dets,
                                            params.rec_thrs)
    return Matches(gt_rows, dt_rows, dt_rank, key_cat, status, dt_match, gt_match, npig, precision, recall)


def image_facts(inputs: Inputs, m: Matches, max_det: int) -> dict[str, np.ndarray]:
    """Cross-class IoU facts per prediction and per GT, indexed like the stored rows."""
    from odfail import _kernels

    gt, dt = inputs.gt, inputs.dt
    n_dt = len(dt["pred_id"])
    keep = np.zeros(n_dt, dtype=np.bool_)
    keep[m.dt_rows] = m.dt_rank < max_det
    all_ids = np.union1d(inputs.img_ids, np.union1d(gt["image_id"], dt["image_id"])) if (
        len(m.gt_rows) < len(gt["gt_id"]) or len(m.dt_rows) < n_dt) else inputs.img_ids
    g_img, _ = _index(all_ids, gt["image_id"])
    d_img, _ = _index(all_ids, dt["image_id"])
    iou_same, gt_same, iou_other, gt_other, iou_crowd, gt_iou, gt_best = _kernels.image_facts(
        gt["x"], gt["y"], gt["w"], gt["h"], g_img, gt["category_id"], gt["iscrowd"],
        dt["x"], dt["y"], dt["w"], dt["h"], d_img, dt["category_id"], keep, len(all_ids))

    def ids(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
        out = np.full(len(rows), -1, dtype=np.int64)
        hit = rows >= 0
        out[hit] = table[rows[hit]]
        return out

    return {"iou_same": iou_same, "gt_same": ids(gt_same, gt["gt_id"]),
            "iou_other": iou_other, "gt_other": ids(gt_other, gt["gt_id"]),
            "category_other": ids(gt_other, gt["category_id"]), "iou_crowd": iou_crowd,
            "gt_iou": gt_iou, "gt_best": ids(gt_best, dt["pred_id"])}


def _constant(value: str, n: int):
    """A string column holding one value: a dictionary array costs one int32 per row."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def write_match_tables(ws: Workspace, run: str, inputs: Inputs, m: Matches, facts: dict[str, np.ndarray],
                       n_thr: int = 10) -> None:
    """Write matches/<run>.parquet and gt_matches/<run>.parquet: COCO's ten thresholds at area "all", one flat
    nullable column per threshold (gt_50 ... gt_95, pred_50 ... pred_95); the views assemble them into lists."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from odfail import _kernels

    gt, dt = inputs.gt, inputs.dt
    n_dt, n_gt = len(dt["pred_id"]), len(gt["gt_id"])

    def per_threshold(prefix: str, grouped: np.ndarray, rows: np.ndarray, n: int, ids: np.ndarray) -> dict:
        """(rows, T) grouped matches (-1 = none) -> one nullable id column per threshold, in stored order."""
        out, valid = _kernels.ids_by_threshold(grouped[:, :n_thr], rows, n, ids)
        return {f"{prefix}_{50 + 5 * t}": pa.array(out[t], mask=~valid[t]) for t in range(n_thr)}

    nullable = lambda v: pa.array(v, mask=v < 0)  # noqa: E731
    rank = np.full(n_dt, -1, dtype=np.int32)
    rank[m.dt_rows] = m.dt_rank
    matches = pa.table({
        "run": _constant(run, n_dt), "pred_id": dt["pred_id"], "image_id": dt["image_id"],
        "category_id": dt["category_id"], "score": dt["score"], "rank": nullable(rank),
        **per_threshold("gt", m.dt_match, m.dt_rows, n_dt, gt["gt_id"][m.gt_rows]),
        "iou_same": facts["iou_same"], "gt_same": nullable(facts["gt_same"]),
        "iou_other": facts["iou_other"], "gt_other": nullable(facts["gt_other"]),
        "category_other": nullable(facts["category_other"]), "iou_crowd": facts["iou_crowd"],
    })
    gt_matches = pa.table({
        "run": _constant(run, n_gt), "gt_id": gt["gt_id"], "image_id": gt["image_id"],
        "category_id": gt["category_id"], "ignored": gt["iscrowd"].astype(bool),
        **per_threshold("pred", m.gt_match, m.gt_rows, n_gt, dt["pred_id"][m.dt_rows]),
        "iou_best": facts["gt_iou"], "pred_best": nullable(facts["gt_best"]),
    })
    def write(name: str, table: pa.Table) -> None:
        target = ws.table_path(name, run)
        tmp = target.with_suffix(".parquet.tmp")
        # dictionary-encoding high-cardinality ids and IoUs triples the write time for nothing
        pq.write_table(table, tmp, compression="snappy", use_dictionary=["run"])
        os.replace(tmp, target)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # pyarrow writes without the GIL
        list(pool.map(write, ("matches", "gt_matches"), (matches, gt_matches)))
