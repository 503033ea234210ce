"""Everything a report shows, aggregated: small tables (lists of dicts), never a row per prediction.

Each part runs the step it needs when the workspace does not store it yet (evaluation, TIDE errors, outcomes,
metric tables), through the analyses' public functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace

PR_IOUS = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # the IoU slider: 0.10 ... 0.90
PR_POINTS = np.arange(0, 101, 4)  # recall 0, 0.04, ... 1: the 101-point curve thinned for the page
WORST = 10  # rows per worst-case table
ERROR_TYPES = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")


@dataclass
class ReportData:
    run: str
    iou: float
    score: float | None
    info: dict[str, Any]
    coco: dict[str, float]
    headline: dict[str, Any]
    errors: dict[str, Any]
    confusion: dict[str, Any]
    per_class: list[dict[str, Any]]
    importance: list[dict[str, Any]]
    by_metric: list[dict[str, Any]]
    metric_descriptions: dict[str, str]
    pr: list[dict[str, Any]]
    calibration: dict[str, Any]
    distribution: dict[str, list[dict[str, Any]]]
    worst: dict[str, list[dict[str, Any]]]
    compare: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def gather(ws: Workspace, run: str, compare_with: str | None = None, iou: float = 0.5, score: float | None = None,
           step: Callable[[str], None] | None = None) -> ReportData:
    """Compute (or read) every table of the report of ``run``."""
    from odfail.analysis.by_metric import Context, by_metric_in, importance_in
    from odfail.analysis.calibration import calibration
    from odfail.analysis.classes import per_class
    from odfail.analysis.compare import compare, headline
    from odfail.analysis.distribution import distribution
    from odfail.analysis.metrics import registry
    from odfail.evaluate.coco import coco_stats_of
    from odfail.evaluate.confusion import confusion
    from odfail.evaluate.tide import errors_summary
    from odfail.match.outcomes import outcomes

    step = step or (lambda message: None)
    ws.require_run(run)
    step("COCO evaluation")
    coco = coco_stats_of(ws, run)
    step("outcomes at IoU 0.05 ... 0.95")
    o = outcomes(ws, run, (iou, *PR_IOUS))
    head = headline(o, iou, score)
    classes = per_class(ws, run, iou, score)
    table = classes.table.to_dicts()
    f1 = [r["f1"] for r in table if r["gt"] > 0 and r["f1"] is not None]
    head["f1"] = float(np.mean(f1)) if f1 else 0.0
    step("TIDE errors")
    err = errors_summary(ws, run)
    conf = confusion(ws, run, iou=0.5, score=score, top=15)
    step("quality metrics")
    ctx = Context(ws, run, iou, score)
    metrics = [m for m in registry(ws)]
    imp = importance_in(ctx).rows
    by = [by_metric_in(ctx, m.name).to_dict() for m in metrics]
    step("curves and calibration")
    pr = _pr_rows(o)
    cal = calibration(ws, run, iou, 10).to_dict()
    step("data distribution")
    dist = {k: v.to_dicts() for k, v in distribution(ws, run, score).tables.items()}
    worst = _worst(ws, run)
    notes = _thumbnails(ws, worst, step)
    cmp = None
    if compare_with is not None:
        step(f"comparing with run {compare_with!r}")
        cmp = compare(ws, compare_with, run, iou, score).to_dict()
    return ReportData(run, float(iou), score, _info(ws, run), coco, head, err, conf.to_dict(), table, imp, by,
                      {m.name: m.description for m in metrics}, pr, cal, dist, worst, cmp, notes)


def _info(ws: Workspace, run: str) -> dict[str, Any]:
    row = ws.sql("""select (select count(*) from images) as images, (select count(*) from categories) as classes,
                           (select count(*) from gt where not coalesce(iscrowd, false)) as gt,
                           (select count(*) from gt where iscrowd) as crowd,
                           (select predictions from runs where run = $run) as predictions,
                           (select source from runs where run = $run) as source""", run=run).to_dicts()[0]
    return row


def _pr_rows(o) -> list[dict[str, Any]]:
    """The 101-point curves at each slider IoU, thinned to PR_POINTS: one row per (IoU, class with GT) and one
    for the mean curve over classes (k = -1), its precision as a list the chart flattens (a row per point would
    be 3.5 times the bytes)."""
    from odfail.analysis.classes import _mean_valid

    rows = []
    has_gt = o.npig > 0
    for iou in PR_IOUS:
        t = o.index(iou)
        p = o.precision[t][PR_POINTS]  # (points, K)
        if has_gt.any():
            rows.append({"i": iou, "k": -1, "ap": _mean_valid(o.precision[t]),
                         "p": np.round(p[:, has_gt].mean(axis=1), 3).tolist()})
        for k in np.flatnonzero(has_gt):
            rows.append({"i": iou, "k": int(o.cat_ids[k]), "ap": _mean_valid(o.precision[t, :, k]),
                         "p": np.round(p[:, k], 3).tolist()})
    return rows


def _worst(ws: Workspace, run: str) -> dict[str, list[dict[str, Any]]]:
    """The highest-scoring false positives of each error type and the largest missed objects (tidecv's
    defaults), with a few metric values: enough to go and look at them."""
    con = ws.connect()
    try:
        con.execute("set variable pos_threshold = 0.5")
        fps = con.sql("""
            with ranked as (
                select e.error_type, e.pred_id, e.image_id, c.name as class, e.score, e.iou,
                       p.x, p.y, p.w, p.h, o.name as gt_class,
                       row_number() over (partition by e.error_type order by e.score desc, e.pred_id) as n
                from errors as e
                join predictions as p on p.run = e.run and p.pred_id = e.pred_id
                join categories as c on c.category_id = e.category_id
                left join categories as o on o.category_id = e.gt_category_id
                where e.run = $run and e.error_type in ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg')
                      and not e.ignored)
            select * exclude (n) from ranked where n <= $n order by error_type, score desc""",
                      params={"run": run, "n": WORST}).pl()
        missed = con.sql("""
            select g.gt_id, g.image_id, c.name as class, g.x, g.y, g.w, g.h, g.area, e.status
            from gt_errors as e join gt as g using (gt_id) join categories as c on c.category_id = g.category_id
            where e.run = $run and e.status = 'Miss'
            order by g.area desc, g.gt_id limit $n""", params={"run": run, "n": WORST}).pl()
    finally:
        con.close()
    out = {t: fps.filter(fps["error_type"] == t).drop("error_type").to_dicts() for t in ERROR_TYPES[:5]}
    out["Miss"] = missed.to_dicts()
    return out


def _thumbnails(ws: Workspace, worst: dict[str, list[dict[str, Any]]], step) -> list[str]:
    """Add a picture (``thumb``: a data URI) to every worst-case row where the workspace knows its images: the
    image around the prediction (or the missed object) with the image's GT boxes and the prediction drawn. Returns
    notes on images that could not be read."""
    from concurrent.futures import ThreadPoolExecutor

    from odfail.analysis.pixels import images_folder
    from odfail.report.charts import ERROR_COLOURS
    from odfail.report.thumbs import GT_COLOUR, hex_to_rgb, thumbnail

    folder = images_folder(ws)
    if folder is None:
        return []
    step("pictures of the worst cases")
    ids = sorted({r["image_id"] for rows in worst.values() for r in rows})
    con = ws.connect()
    try:
        images = {r[0]: r[1:] for r in con.execute(
            "select image_id, file_name, coalesce(width, 0), coalesce(height, 0) from images "
            "where image_id in (select unnest($ids))", {"ids": ids}).fetchall()}
        gt: dict[int, list[dict[str, Any]]] = {}
        for image_id, x, y, w, h, name, crowd in con.execute(
                "select g.image_id, g.x, g.y, g.w, g.h, c.name, coalesce(g.iscrowd, false) from gt as g "
                "join categories as c using (category_id) where g.image_id in (select unnest($ids))",
                {"ids": ids}).fetchall():
            gt.setdefault(image_id, []).append({"x": x, "y": y, "w": w, "h": h, "colour": GT_COLOUR,
                                                "label": f"GT {name}" + (" (crowd)" if crowd else "")})
    finally:
        con.close()
    jobs = []
    for kind, rows in worst.items():
        colour = hex_to_rgb(ERROR_COLOURS[kind])
        for r in rows:
            box = {"x": r["x"], "y": r["y"], "w": r["w"], "h": r["h"], "colour": colour}
            if kind == "Miss":
                label = f"missed {r['class']}"
                others = [b for b in gt.get(r["image_id"], []) if (b["x"], b["y"], b["w"], b["h"]) !=
                          (r["x"], r["y"], r["w"], r["h"])]
            else:
                label = f"{kind} {r['score']:.2f} {r['class']}"
                others = gt.get(r["image_id"], [])
            jobs.append((r, others + [dict(box, label=label)], box))
    notes = []

    def one(job) -> None:
        r, boxes, focus = job
        file_name, width, height = images.get(r["image_id"], (None, 0, 0))
        if file_name is None:
            return
        r["thumb"], note = thumbnail(folder / file_name, (width, height), focus, boxes)
        if note:
            notes.append(note)

    import os

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(one, jobs))
    return sorted(set(notes))
