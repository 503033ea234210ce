"""Outcomes at any IoU: COCO's verdict on every prediction and GT of a run at a grid of IoU thresholds, matched
once and stored, so that every analysis (per class, PR curves, calibration, metrics, comparisons, the report's
IoU slider) reads them instead of matching again.

The grid is 0.05, 0.10, ... 0.45 and COCO's ten thresholds (their own floats, so that the curves at .50:.95 are
pycocotools' to the bit); an IoU asked for that is not on it is matched as one more threshold and stored with the
rest. COCO's rules throughout: area range "all", the 100 best predictions per image and class (maxDets 100),
crowd GT absorbing the predictions matched to them (ignored: neither TP nor FP), greedy matching by score.

Stored per run (derived: deleted when the GT or the run is ingested again, so a stale one is never read):

- ``pred_outcomes/<run>.parquet``: one row per prediction, in accumulation order (category, then
  ``class_rank``): ``kept`` (within the 100 best of its image and class), ``tp_bits`` / ``fp_bits`` (bit ``b`` set:
  TP / FP at threshold ``b``; neither: ignored or not kept);
- ``gt_outcomes/<run>.parquet``: one row per GT: ``ignored`` (crowd), ``match_score`` (a list, one entry per
  threshold: the score of the prediction that matched it, NaN where it was missed);
- ``class_curves/<run>.parquet``: one row per (threshold, category): ``npig`` (non-crowd GT), ``recall`` and
  ``precision_101`` (pycocotools' ``recall[t, k, 0, -1]`` and ``precision[t, :, k, 0, -1]``; -1 without GT);
- ``outcome_thresholds/<run>.parquet``: ``bit`` -> ``iou_threshold``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from odfail.match.params import IOU_THRS, REC_THRS

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace

# 0.05 ... 0.45, then COCO's ten as pycocotools computes them
GRID = np.concatenate([np.round(np.arange(1, 10) * 0.05, 2), IOU_THRS])
TABLES = ("pred_outcomes", "gt_outcomes", "class_curves", "outcome_thresholds")  # what one matching writes
MAX_THRESHOLDS = 63  # bits of tp_bits / fp_bits


@dataclass
class Outcomes:
    """One run's stored outcomes as numpy columns (see the module docstring for what each holds).

    thresholds: Shape (T,), ascending. Prediction columns, Shape (N_dt,), in accumulation order: ``pred_id``,
    ``image_id``, ``category_id``, ``score``, ``kept``, ``tp_bits``, ``fp_bits``. GT columns, Shape (N_gt,):
    ``gt_id``, ``image_id``, ``category_id``, ``ignored``; ``match_score`` Shape (N_gt, T). Curves: ``cat_ids``
    Shape (K,), ``npig`` (K,), ``recall`` (T, K), ``precision`` (T, R, K).
    """

    run: str
    thresholds: np.ndarray
    pred: dict[str, np.ndarray]
    gt: dict[str, np.ndarray]
    cat_ids: np.ndarray
    npig: np.ndarray
    recall: np.ndarray
    precision: np.ndarray

    def index(self, iou: float) -> int:
        """The position of threshold ``iou`` (to 1e-9: 0.6 is COCO's 0.6000000000000001)."""
        hits = np.flatnonzero(np.abs(self.thresholds - iou) < 1e-9)
        if not len(hits):
            raise KeyError(iou)
        return int(hits[0])

    def tp_fp(self, iou: float, score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per prediction (accumulation order): TP and FP at ``iou``, counting only scores >= ``score``."""
        b = self.index(iou)
        tp = ((self.pred["tp_bits"] >> b) & 1).astype(bool)
        fp = ((self.pred["fp_bits"] >> b) & 1).astype(bool)
        if score is not None:
            above = self.pred["score"] >= score
            tp &= above
            fp &= above
        return tp, fp

    def found(self, iou: float, score: float | None = None) -> np.ndarray:
        """Per GT: matched at ``iou`` (by a prediction scoring >= ``score``); crowd GT are never found."""
        s = self.gt["match_score"][:, self.index(iou)]
        hit = ~np.isnan(s) if score is None else (s >= score)
        return hit & ~self.gt["ignored"]


def check_iou(iou: float) -> float:
    from odfail.exceptions import WorkspaceError

    if not 0.05 - 1e-9 <= iou <= 0.95 + 1e-9:
        raise WorkspaceError(f"--iou {iou} must be between 0.05 and 0.95")
    return float(iou)


def outcomes(ws: Workspace, run: str, ious: tuple[float, ...] = ()) -> Outcomes:
    """The stored outcomes of ``run``, matched and stored first if the workspace has none, or has none at one of
    ``ious`` (then matched again with that threshold added to the stored ones)."""
    ws.require_run(run)
    for iou in ious:
        check_iou(iou)
    stored = _read(ws, run)
    if stored is not None and all(np.any(np.abs(stored.thresholds - i) < 1e-9) for i in ious):
        return stored
    thrs = GRID if stored is None else stored.thresholds
    extra = [i for i in ious if not np.any(np.abs(thrs - i) < 1e-9)]
    thrs = np.sort(np.concatenate([thrs, np.asarray(extra, dtype=np.float64)]))
    if len(thrs) > MAX_THRESHOLDS:
        from odfail.exceptions import WorkspaceError

        raise WorkspaceError(f"run {run!r} stores outcomes at {len(thrs) - 1} IoU thresholds already; "
                             "ingest the run again to start afresh")
    return _compute_and_store(ws, run, thrs)


def _compute_and_store(ws: Workspace, run: str, thrs: np.ndarray) -> Outcomes:
    import threading

    from odfail.match.coco import load_inputs, match, warm
    from odfail.match.params import DEFAULT_AREAS, Params

    params = Params(area_ranges={"all": DEFAULT_AREAS["all"]}, max_dets=(100,))
    warming = threading.Thread(target=warm, args=("bbox",), daemon=True)
    warming.start()
    inputs = load_inputs(ws, run, params)
    warming.join()
    m = match(inputs, params, thrs)
    gt, dt = inputs.gt, inputs.dt
    T = len(thrs)
    # predictions, grouped rows -> bits
    kept = m.dt_rank < 100
    tp_bits = np.zeros(len(m.dt_rows), np.int64)
    fp_bits = np.zeros(len(m.dt_rows), np.int64)
    for b in range(T):
        tp, fp = m.outcomes(b, 0)
        tp_bits |= (tp & kept).astype(np.int64) << b
        fp_bits |= (fp & kept).astype(np.int64) << b
    # every stored prediction gets a row; those outside the evaluated images or classes are not kept
    n_dt = len(dt["pred_id"])
    row_kept = np.zeros(n_dt, bool)
    row_tp = np.zeros(n_dt, np.int64)
    row_fp = np.zeros(n_dt, np.int64)
    row_kept[m.dt_rows], row_tp[m.dt_rows], row_fp[m.dt_rows] = kept, tp_bits, fp_bits
    order = np.lexsort((dt["class_rank"], dt["category_id"]))  # accumulation order
    pred = {"pred_id": dt["pred_id"][order], "image_id": dt["image_id"][order],
            "category_id": dt["category_id"][order], "score": dt["score"][order],
            "class_rank": dt["class_rank"][order], "kept": row_kept[order], "tp_bits": row_tp[order],
            "fp_bits": row_fp[order]}
    # GT: the score of the prediction that matched it at each threshold (area "all", kept predictions only)
    n_gt = len(gt["gt_id"])
    match_score = np.full((n_gt, T), np.nan)
    matched = m.gt_match >= 0
    scores = np.where(matched, dt["score"][m.dt_rows[np.maximum(m.gt_match, 0)]], np.nan)
    match_score[m.gt_rows] = scores
    g = {"gt_id": gt["gt_id"], "image_id": gt["image_id"], "category_id": gt["category_id"],
         "ignored": gt["iscrowd"].astype(bool), "match_score": match_score}
    npig = m.npig[:, 0].astype(np.int64)
    precision = np.ascontiguousarray(m.precision[:, :, :, 0, 0])  # (T, R, K)
    recall = np.ascontiguousarray(m.recall[:, :, 0, 0])  # (T, K)
    result = Outcomes(run, thrs, pred, g, inputs.cat_ids, npig, recall, precision)
    _write(ws, run, result)
    return result


def _write(ws: Workspace, run: str, o: Outcomes) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from odfail._arrow import column, constant

    T, K = len(o.thresholds), len(o.cat_ids)
    n_gt = len(o.gt["gt_id"])
    tables = {
        "pred_outcomes": pa.table({"run": constant(run, len(o.pred["pred_id"])),
                                   **{k: column(np.ascontiguousarray(v)) for k, v in o.pred.items()}}),
        "gt_outcomes": pa.table({
            "run": constant(run, n_gt), **{k: column(np.ascontiguousarray(o.gt[k]))
                                           for k in ("gt_id", "image_id", "category_id", "ignored")},
            "match_score": pa.FixedSizeListArray.from_arrays(
                column(np.ascontiguousarray(o.gt["match_score"]).ravel()), T).cast(pa.list_(pa.float64()))}),
        "class_curves": pa.table({
            "run": constant(run, T * K), "iou_threshold": column(np.repeat(o.thresholds, K)),
            "category_id": column(np.tile(o.cat_ids, T)), "npig": column(np.tile(o.npig, T)),
            "recall": column(np.ascontiguousarray(o.recall).ravel()),
            "precision_101": pa.FixedSizeListArray.from_arrays(
                column(np.ascontiguousarray(o.precision.transpose(0, 2, 1)).ravel()), len(REC_THRS)
            ).cast(pa.list_(pa.float64()))}),
        "outcome_thresholds": pa.table({"run": constant(run, T), "bit": column(np.arange(T, dtype=np.int64)),
                                        "iou_threshold": column(o.thresholds)}),
    }
    for name, table in tables.items():
        target = ws.table_path(name, run)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".parquet.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)


# Outcomes read in this process: (files' stamps, Outcomes) per run's file, so that one report or comparison reads
# them once; the arrays are not to be written to.
_CACHE: dict[str, tuple[tuple, Outcomes]] = {}


def _read(ws: Workspace, run: str) -> Outcomes | None:
    paths = [ws.table_path(t, run) for t in TABLES]
    try:
        stamp = tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in map(os.stat, paths))
    except FileNotFoundError:
        return None
    key = str(paths[0])
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    result = _load(ws, run)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[key] = (stamp, result)
    return result


def _load(ws: Workspace, run: str) -> Outcomes:
    import pyarrow.parquet as pq

    def load(name: str) -> dict[str, np.ndarray]:
        t = pq.read_table(ws.table_path(name, run))
        return {c: t.column(c) for c in t.column_names if c != "run"}

    def flat(chunked, width: int) -> np.ndarray:
        values = chunked.combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return values.reshape(-1, width) if width else values

    thr = load("outcome_thresholds")
    order = np.argsort(thr["bit"].to_numpy())
    thresholds = thr["iou_threshold"].to_numpy()[order]
    T = len(thresholds)
    p = load("pred_outcomes")
    pred = {k: v.to_numpy() for k, v in p.items()}
    g = load("gt_outcomes")
    gt = {k: g[k].to_numpy() for k in ("gt_id", "image_id", "category_id", "ignored")}
    gt["match_score"] = flat(g["match_score"], T) if len(gt["gt_id"]) else np.zeros((0, T))
    c = load("class_curves")
    cat_ids = c["category_id"].to_numpy()
    K = len(cat_ids) // T if T else 0
    cat_ids = cat_ids[:K]
    npig = c["npig"].to_numpy()[:K]
    recall = c["recall"].to_numpy().reshape(T, K)
    precision = (flat(c["precision_101"], len(REC_THRS)).reshape(T, K, len(REC_THRS)).transpose(0, 2, 1)
                 if K else np.zeros((T, len(REC_THRS), 0)))
    return Outcomes(run, thresholds, pred, gt, cat_ids, npig, recall, np.ascontiguousarray(precision))
