"""Quality metrics on every GT object, every prediction and every image: built-in ones and the user's own.

Computed once per run (GT metrics too: ``best_iou`` of a GT depends on the run) and stored as
``gt_metrics/<run>.parquet``, ``prediction_metrics/<run>.parquet`` and ``image_metrics/<run>.parquet`` (views
``gt_metrics``, ``prediction_metrics``, ``image_metrics``); derived tables, so ingesting the GT or the run again
deletes them, and adding or removing a custom metric deletes every run's. Image metrics are attached to the
objects of the image wherever metrics are compared with outcomes. ``missing_objects`` and ``false_positives``
depend on the IoU and score asked for, so they are computed from the stored outcomes when used, not stored.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace

SIDES = ("gt", "predictions", "images")


@dataclass(frozen=True)
class Metric:
    name: str
    on: str  # "gt", "predictions", "both" (objects of either side) or "images"
    description: str
    sql: str | None = None  # a custom metric's expression over the view of its side


BUILTIN = [
    Metric("confidence", "predictions", "the prediction's score"),
    Metric("area", "both", "COCO's area (what decides small/medium/large): the GT's area field, a prediction's box "
                           "area w*h (its mask area without a box)"),
    Metric("relative_area", "both", "area / image area (null where the image has no size)"),
    Metric("width", "both", "box width, pixels"),
    Metric("height", "both", "box height, pixels"),
    Metric("aspect_ratio", "both", "box width / height (null where height is 0)"),
    Metric("border_closeness", "both", "1 - (distance from the box to the nearest image edge) / (half the image's "
                                       "shorter side), clipped to [0, 1]: 1 = touching an edge, 0 = at the centre "
                                       "(null where the image has no size)"),
    Metric("duplicate_iou", "both", "highest IoU with another object of the same class in the image, on the same "
                                    "side (GT among GT, a prediction among its run's): annotation duplicates, "
                                    "double detections"),
    Metric("crowding_iou", "both", "occlusion proxy: a GT's highest IoU with another GT of any class; a "
                                   "prediction's second-highest IoU with a non-crowd GT of any class (the highest "
                                   "is the object it is on)"),
    Metric("best_iou", "both", "a prediction's best IoU with a non-crowd GT of its class; a GT's best IoU with a "
                               "prediction of its class"),
    Metric("objects_in_image", "images", "non-crowd GT objects in the image"),
    Metric("density", "images", "fraction of the image covered by the union of its non-crowd GT boxes (exact, "
                                "clipped to the image; null where the image has no size)"),
    Metric("missing_objects", "images", "GT of the image the run missed (FN) at the IoU and score asked for"),
    Metric("false_positives", "images", "false positives in the image at the IoU and score asked for"),
]
DYNAMIC = ("missing_objects", "false_positives")
# from the images' pixels (odfail.analysis.pixels), where the workspace knows its image folder
PIXEL = [
    Metric("brightness", "images", "mean of R, G, B / 255 (Pillow; JPEG decoded at a reduced scale)"),
    Metric("contrast", "images", "standard deviation of R, G, B / 255"),
    Metric("sharpness", "images", "variance of the Laplacian of the grey image resized to 256 px (blur: low)"),
    Metric("colorfulness", "images", "Hasler and Süsstrunk's colourfulness / 255"),
    Metric("image_width", "images", "the image file's width, pixels"),
    Metric("image_height", "images", "the image file's height, pixels"),
    Metric("object_brightness", "both", "mean of R, G, B inside the box / 255"),
    Metric("object_contrast", "both", "standard deviation of R, G, B inside the box / 255"),
]
TABLES = {"gt": "gt_metrics", "predictions": "prediction_metrics", "images": "image_metrics"}
_KEYS = {"gt": "gt_id", "predictions": "pred_id", "images": "image_id"}
_VIEWS = {"gt": "gt", "predictions": "predictions", "images": "images"}
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CUSTOM_FILE = "custom_metrics.json"


def custom(ws: Workspace) -> list[Metric]:
    path = ws.path / _CUSTOM_FILE
    if not path.exists():
        return []
    return [Metric(d["name"], d["on"], d.get("description") or f"custom: {d['sql']}", d["sql"])
            for d in json.loads(path.read_text())]


def registry(ws: Workspace | None = None) -> list[Metric]:
    """Every metric: the built-in ones, the pixel ones where the workspace knows its images, the custom ones."""
    if ws is None:
        return list(BUILTIN)
    from odfail.analysis.pixels import images_folder

    return BUILTIN + (PIXEL if images_folder(ws) is not None else []) + custom(ws)


def find(ws: Workspace, name: str) -> Metric:
    from odfail.exceptions import WorkspaceError

    for m in registry(ws):
        if m.name == name:
            return m
    have = ", ".join(m.name for m in registry(ws))
    raise WorkspaceError(f"no metric {name!r} (metrics: {have})")


def _custom_values(con, metric: Metric, run: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, values) of a custom metric over its side's view; values NaN where null."""
    side = "images" if metric.on == "images" else metric.on
    where = " where run = $run" if side == "predictions" else ""
    r = con.execute(f"select {_KEYS[side]} as id, ({metric.sql})::DOUBLE as v from {_VIEWS[side]}{where}",
                    {"run": run} if where else None).fetchnumpy()
    v = r["v"]
    values = np.asarray(v.filled(np.nan) if hasattr(v, "filled") else v, dtype=np.float64)
    return np.asarray(r["id"], dtype=np.int64), values


def add_custom(ws: Workspace, name: str, on: str, sql: str, description: str | None = None) -> Metric:
    """Store a custom metric after checking that it is a numeric SQL expression over its side's view; the metric
    tables of every run are recomputed on next use. Raises WorkspaceError (workspace unchanged) otherwise."""
    import duckdb

    from odfail.exceptions import WorkspaceError

    if on not in SIDES:
        raise WorkspaceError(f"--on {on}: expected gt, predictions or images")
    if not _NAME.match(name):
        raise WorkspaceError(f"metric name {name!r}: lowercase letters, digits and '_', starting with a letter")
    if name in ("run", "category_id", *_KEYS.values()):
        raise WorkspaceError(f"metric name {name!r} is a column of the metric tables; choose another")
    if any(m.name == name for m in registry(ws)):
        raise WorkspaceError(f"metric {name!r} exists already (remove it first to redefine it)")
    sql = sql.strip()
    if not sql:
        raise WorkspaceError("--sql is empty: give an SQL expression, e.g. \"w * h / 1000\"")
    if ";" in sql:
        raise WorkspaceError(f"--sql {sql!r}: one expression, not statements (found ';')")
    con = ws.connect()  # read-only: an expression cannot write to the workspace
    try:
        try:
            kind = con.execute(f"describe select ({sql}) as v from {_VIEWS[on]}").fetchall()[0][1]
        except duckdb.Error as e:
            raise WorkspaceError(f"--sql {sql!r}: {str(e).splitlines()[0]}") from None
        if not re.match(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|"
                        r"DOUBLE|DECIMAL|BOOLEAN)", kind):
            raise WorkspaceError(f"--sql {sql!r}: gives {kind}, not a number")
        metric = Metric(name, on, description or f"custom: {sql}", sql)
        try:
            for run in ([ws.runs()[0]] if on == "predictions" and ws.runs() else [""]):
                _custom_values(con, metric, run)
        except duckdb.Error as e:
            raise WorkspaceError(f"--sql {sql!r}: {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    _save(ws, [*custom(ws), metric])
    return metric


def remove_custom(ws: Workspace, name: str) -> None:
    from odfail.exceptions import WorkspaceError

    mine = custom(ws)
    if not any(m.name == name for m in mine):
        raise WorkspaceError(f"no custom metric {name!r} (custom metrics: {', '.join(m.name for m in mine) or 'none'})")
    _save(ws, [m for m in mine if m.name != name])


def _save(ws: Workspace, metrics: list[Metric]) -> None:
    path = ws.path / _CUSTOM_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([{"name": m.name, "on": m.on, "sql": m.sql, "description": m.description}
                               for m in metrics], indent=2))
    for run in ws.runs():  # every run's tables hold the old set of columns
        for table in TABLES.values():
            ws.table_path(table, run).unlink(missing_ok=True)
    os.replace(tmp, path)


@dataclass
class MetricTables:
    """One run's metric columns as numpy, NaN = null. ``gt`` / ``predictions`` / ``images``: name -> (N,) with the
    key column (``gt_id``, ``pred_id``, ``image_id``) and ``image_id`` on the object sides."""

    run: str
    gt: dict[str, np.ndarray]
    predictions: dict[str, np.ndarray]
    images: dict[str, np.ndarray]

    def side(self, name: str) -> dict[str, np.ndarray]:
        return {"gt": self.gt, "predictions": self.predictions, "images": self.images}[name]


def metric_tables(workspace: Workspace | str, run: str, on_step=None) -> MetricTables:
    """The run's stored metric tables, computed and stored first where missing.

    Example:
        >>> t = metric_tables("ws", "baseline")            # doctest: +SKIP
        >>> t.predictions["crowding_iou"].mean()            # doctest: +SKIP
    """
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    paths = {side: ws.table_path(table, run) for side, table in TABLES.items()}
    if not all(p.exists() for p in paths.values()):
        tables = _compute(ws, run, on_step)
        _write(ws, run, tables)
        return tables
    return _read(ws, run, paths)


def _compute(ws: Workspace, run: str, step=None) -> MetricTables:
    import threading

    from odfail._ids import indexer
    from odfail.analysis import _kernels as K
    from odfail.match.coco import load_inputs, warm
    from odfail.match.params import Params

    warming = threading.Thread(target=warm, args=("bbox",), daemon=True)
    warming.start()
    inputs = load_inputs(ws, run, Params())
    warming.join()
    gt, dt = inputs.gt, inputs.dt
    con = ws.connect()
    try:
        img = con.sql("select image_id, coalesce(width, -1)::DOUBLE as w, coalesce(height, -1)::DOUBLE as h "
                      "from images order by image_id").fetchnumpy()
        ids = np.asarray(img["image_id"], dtype=np.int64)
        image_of = indexer(ids)
        g_img, d_img = image_of(gt["image_id"])[0], image_of(dt["image_id"])[0]
        W, H = np.asarray(img["w"], dtype=np.float64), np.asarray(img["h"], dtype=np.float64)
        g_dup, g_crowding, g_best, d_dup, d_crowding, d_best = K.neighbours(
            gt["x"], gt["y"], gt["w"], gt["h"], g_img, gt["category_id"], gt["iscrowd"], dt["x"], dt["y"], dt["w"],
            dt["h"], d_img, dt["category_id"], len(ids))
        regular = gt["iscrowd"] == 0
        keep = np.flatnonzero(regular)
        covered = K.covered_area(gt["x"][keep], gt["y"][keep], gt["w"][keep], gt["h"][keep], g_img[keep], W, H,
                                 len(ids))
        sized = (W > 0) & (H > 0)
        image_area = np.where(sized, W * H, np.nan)
        images = {"image_id": ids, "objects_in_image": np.bincount(g_img[keep], minlength=len(ids)).astype(
            np.float64), "density": covered / image_area}

        def box_metrics(t, rows_img, extra) -> dict[str, np.ndarray]:
            x, y, w, h = t["x"], t["y"], t["w"], t["h"]
            iw, ih = W[rows_img], H[rows_img]
            known = sized[rows_img]
            edge = np.minimum(np.minimum(x, y), np.minimum(iw - (x + w), ih - (y + h)))
            with np.errstate(divide="ignore", invalid="ignore"):
                border = np.clip(1.0 - edge / (np.minimum(iw, ih) / 2), 0.0, 1.0)
                aspect = np.where(h > 0, w / np.where(h > 0, h, 1.0), np.nan)
            out = {"image_id": t["image_id"], "category_id": t["category_id"], "area": t["area"].astype(np.float64),
                   "relative_area": np.where(known, t["area"] / np.where(known, iw * ih, 1.0), np.nan),
                   "width": w.astype(np.float64), "height": h.astype(np.float64), "aspect_ratio": aspect,
                   "border_closeness": np.where(known, border, np.nan), **extra}
            for name in ("objects_in_image", "density"):  # attached image metrics
                out[name] = images[name][rows_img]
            return out

        g = {"gt_id": gt["gt_id"], **box_metrics(gt, g_img, {"duplicate_iou": g_dup, "crowding_iou": g_crowding,
                                                               "best_iou": g_best})}
        p = {"pred_id": dt["pred_id"], "confidence": dt["score"].astype(np.float64),
             **box_metrics(dt, d_img, {"duplicate_iou": d_dup, "crowding_iou": d_crowding, "best_iou": d_best})}
        sides = {"gt": g, "predictions": p, "images": images}
        _pixels(ws, con, sides, g_img, d_img, gt, dt, step)
        for m in custom(ws):
            key_ids, values = _custom_values(con, m, run)
            pos, found = indexer(np.sort(key_ids))(sides[m.on][_KEYS[m.on]])
            by_id = values[np.argsort(key_ids, kind="stable")]
            sides[m.on][m.name] = np.where(found, by_id[pos], np.nan)
            if m.on == "images":  # attached to the objects of each image
                g[m.name], p[m.name] = sides["images"][m.name][g_img], sides["images"][m.name][d_img]
    finally:
        con.close()
    return MetricTables(run, g, p, images)


def _pixels(ws: Workspace, con, sides, g_img, d_img, gt, dt, step) -> None:
    """Add the pixel metrics where the workspace knows its images (notes on missing or odd images are kept in
    ``image_notes.json`` for `odfail info`)."""
    from odfail.analysis import pixels

    folder = pixels.images_folder(ws)
    if folder is None:
        return
    img = con.sql("select image_id, file_name, coalesce(width, 0)::DOUBLE as width, "
                  "coalesce(height, 0)::DOUBLE as height from images order by image_id").fetchnumpy()
    images = {"image_id": np.asarray(img["image_id"], dtype=np.int64), "file_name": list(img["file_name"]),
              "width": np.asarray(img["width"]), "height": np.asarray(img["height"])}
    boxes = {"gt": {"image_id": gt["image_id"], **{c: gt[c] for c in ("x", "y", "w", "h")}},
             "predictions": {"image_id": dt["image_id"], **{c: dt[c] for c in ("x", "y", "w", "h")}}}
    per_image, per_object, notes = pixels.compute(folder, images, boxes, step)
    for name, values in per_image.items():  # the image table is in image id order, as `images` here
        sides["images"][name] = values
        sides["gt"][name] = values[g_img]
        sides["predictions"][name] = values[d_img]
    for side, cols in per_object.items():
        sides[side].update(cols)
    tmp = ws.path / f".image_notes.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(notes))
    os.replace(tmp, ws.path / "image_notes.json")


def _write(ws: Workspace, run: str, t: MetricTables) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from odfail._arrow import column, constant

    for side, table in TABLES.items():
        cols = t.side(side)
        n = len(next(iter(cols.values())))
        arrays = {"run": constant(run, n)}
        for name, v in cols.items():
            v = np.ascontiguousarray(v)
            arrays[name] = column(v, ~np.isnan(v)) if v.dtype.kind == "f" else column(v)
        target = ws.table_path(table, run)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".parquet.{os.getpid()}.tmp")
        pq.write_table(pa.table(arrays), tmp)
        os.replace(tmp, target)


def _read(ws: Workspace, run: str, paths) -> MetricTables:
    import pyarrow.parquet as pq

    sides = {}
    for side, path in paths.items():
        t = pq.read_table(path)
        cols = {}
        for name in t.column_names:
            if name == "run":
                continue
            c = t.column(name)
            cols[name] = c.to_numpy() if c.null_count == 0 else c.cast("double").fill_null(float("nan")).to_numpy()
        sides[side] = cols
    return MetricTables(run, sides["gt"], sides["predictions"], sides["images"])
