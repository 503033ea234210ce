"""What the metrics explain: precision and recall by metric bucket with outcome counts, metric importance
(mutual information and correlation with the outcome), and outliers.

Outcomes are COCO's at the IoU and score asked for (area "all", maxDets 100, crowd ignored), from the stored
outcomes: a prediction has one if it is a TP or an FP there; a GT if it is not crowd (found or missed). A
prediction is bucketed by its own metric value (for precision), a GT by its own (for recall); image metrics are
the values of the object's image.

Bucketing: ``equal-width`` spans [min, max] of the metric over every object with an outcome, both sides
together, so that precision and recall share one axis; bucket i = floor((v - min) / (max - min) * N), the maximum
in the last bucket; a constant metric is one bucket. ``quantile``: edges at the i/N quantiles of those pooled
values (numpy's linear interpolation); a value equal to an inner edge goes to the bucket above it, and equal edges
(many ties) merge their buckets, so there may be fewer than N. Unlike Encord Active, recall is found / GT (it
divides FN by FN + TP + FP) and values are not rounded to bucket.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from odfail.analysis.metrics import Metric, MetricTables
    from odfail.match.outcomes import Outcomes
    from odfail.store.workspace import Workspace

BUCKETINGS = ("equal-width", "quantile")
K_NEIGHBOURS = 3  # scikit-learn's mutual_info_classif default (Ross 2014)
# importance reads at most this many objects of a side: a seeded sample, the same rows for every metric (a sort of
# 325k values costs 26 ms, and importance sorts twice per metric and side)
SAMPLE = 65_536


@dataclass
class Joined:
    """A metric's values beside the outcomes: per side, the objects with an outcome. ``pred``: value, tp (else FP),
    category_id, id; ``gt``: value, found (else missed), category_id, id. None where the metric is not defined on
    that side."""

    metric: str
    pred: dict[str, np.ndarray] | None
    gt: dict[str, np.ndarray] | None


def _sides(metric: Metric) -> tuple[bool, bool]:
    """(on predictions, on GT)."""
    return metric.on in ("predictions", "both", "images"), metric.on in ("gt", "both", "images")


class Context:
    """A run's outcomes and metric tables, lined up once for any number of metrics at one IoU and score."""

    def __init__(self, ws: Workspace, run: str, iou: float, score: float | None):
        from odfail._ids import indexer
        from odfail.analysis.metrics import metric_tables
        from odfail.match.outcomes import outcomes

        self.ws, self.run, self.iou, self.score = ws, run, iou, score
        self.o: Outcomes = outcomes(ws, run, (iou,))
        self.t: MetricTables = metric_tables(ws, run)
        tp, fp = self.o.tp_fp(iou, score)
        self.p_rows = np.flatnonzero(tp | fp)  # outcome predictions, in the outcomes' order
        self.p_tp = tp[self.p_rows]
        # metric rows of those predictions (metric tables are in stored order, outcomes in accumulation order)
        ids = self.t.predictions["pred_id"]
        order = np.argsort(ids, kind="stable")
        self.p_metric_rows = order[indexer(ids[order])(self.o.pred["pred_id"][self.p_rows])[0]]
        self.image_of = indexer(self.t.images["image_id"])  # image ids -> positions in the image table
        found = self.o.found(iou, score)
        regular = ~self.o.gt["ignored"]
        self.g_rows = np.flatnonzero(regular)
        self.g_found = found[self.g_rows]
        gid = self.t.gt["gt_id"]
        if not np.array_equal(gid, self.o.gt["gt_id"]):  # both are in the stored GT order; guard it
            order = np.argsort(gid, kind="stable")
            self.g_metric_rows = order[np.searchsorted(gid[order], self.o.gt["gt_id"][self.g_rows])]
        else:
            self.g_metric_rows = self.g_rows
        self._dynamic: dict[str, np.ndarray] | None = None

    def dynamic(self) -> dict[str, np.ndarray]:
        """missing_objects and false_positives per image (sorted ids in ``image_id``) at this IoU and score."""
        if self._dynamic is None:
            images = self.t.images["image_id"]
            found = self.o.found(self.iou, self.score)
            missed = ~self.o.gt["ignored"] & ~found
            _, fp = self.o.tp_fp(self.iou, self.score)

            def per_image(image_ids: np.ndarray) -> np.ndarray:
                return np.bincount(self.image_of(image_ids)[0], minlength=len(images)).astype(np.float64)

            self._dynamic = {"image_id": images, "missing_objects": per_image(self.o.gt["image_id"][missed]),
                             "false_positives": per_image(self.o.pred["image_id"][fp])}
            # each object's image, for attaching them
            self._image_rows = {"predictions": self.image_of(self.t.predictions["image_id"])[0],
                                "gt": self.image_of(self.t.gt["image_id"])[0]}
        return self._dynamic

    def values(self, metric: Metric, side: str) -> np.ndarray:
        """The metric's value of every row of a side's metric table (NaN = null)."""
        from odfail.analysis.metrics import DYNAMIC

        if metric.name in DYNAMIC:
            return self.dynamic()[metric.name][self._image_rows[side]]
        table = self.t.predictions if side == "predictions" else self.t.gt
        return np.asarray(table[metric.name], dtype=np.float64)

    def join(self, metric: Metric) -> Joined:
        on_pred, on_gt = _sides(metric)
        pred = gt = None
        if on_pred:
            v = self.values(metric, "predictions")[self.p_metric_rows]
            pred = {"value": v, "tp": self.p_tp, "category_id": self.o.pred["category_id"][self.p_rows],
                    "id": self.o.pred["pred_id"][self.p_rows]}
        if on_gt:
            v = self.values(metric, "gt")[self.g_metric_rows]
            gt = {"value": v, "found": self.g_found, "category_id": self.o.gt["category_id"][self.g_rows],
                  "id": self.o.gt["gt_id"][self.g_rows]}
        return Joined(metric.name, pred, gt)


def edges_of(pooled: np.ndarray, buckets: int, bucketing: str) -> np.ndarray:
    """Bucket edges over the pooled non-null values (see the module docstring). Shape: (n_buckets + 1,)."""
    if not len(pooled):
        return np.zeros(0)
    lo, hi = float(pooled.min()), float(pooled.max())
    if lo == hi:
        return np.array([lo, hi])
    if bucketing == "quantile":
        return np.unique(np.quantile(pooled, np.linspace(0, 1, buckets + 1)))
    return lo + (hi - lo) * np.arange(buckets + 1) / buckets


def bucket_of(v: np.ndarray, edges: np.ndarray, bucketing: str) -> np.ndarray:
    n = len(edges) - 1
    if n <= 1:
        return np.zeros(len(v), np.int64)
    if bucketing == "quantile":
        return np.searchsorted(edges[1:-1], v, side="right").astype(np.int64)
    lo, hi = edges[0], edges[-1]
    return np.minimum(np.floor((v - lo) / (hi - lo) * n).astype(np.int64), n - 1)


def _bucket_rows(j: Joined, edges: np.ndarray, bucketing: str, keep_p=None, keep_g=None) -> list[dict[str, Any]]:
    n = max(len(edges) - 1, 0)
    rows = [{"lo": float(edges[i]), "hi": float(edges[i + 1]), "predictions": None, "tp": None, "fp": None,
             "precision": None, "gt": None, "found": None, "fn": None, "recall": None} for i in range(n)]
    # (side, the flag of a hit, keep, names of: all, hits, misses, share of hits)
    for part, flag, keep, names in ((j.pred, "tp", keep_p, ("predictions", "tp", "fp", "precision")),
                                    (j.gt, "found", keep_g, ("gt", "found", "fn", "recall"))):
        if part is None:
            continue
        ok = ~np.isnan(part["value"]) & (True if keep is None else keep)
        b = bucket_of(part["value"][ok], edges, bucketing)
        hits = np.bincount(b[part[flag][ok]], minlength=n)
        total = np.bincount(b, minlength=n)
        for i, r in enumerate(rows):
            r.update(zip(names, (int(total[i]), int(hits[i]), int(total[i] - hits[i]),
                                 float(hits[i] / total[i]) if total[i] else None)))
    return rows


@dataclass(frozen=True)
class ByMetricResult:
    """Precision and recall per bucket of one metric, with outcome counts (see the module docstring)."""

    run: str
    metric: str
    iou: float
    score: float | None
    bucketing: str
    buckets: list[dict[str, Any]]
    null: dict[str, dict[str, int] | None]
    per_class: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"run": self.run, "metric": self.metric, "iou": self.iou, "score": self.score,
             "bucketing": self.bucketing, "buckets": self.buckets, "null": self.null}
        if self.per_class is not None:
            d["per_class"] = self.per_class
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        rows = [{"category_id": None, **b} for b in self.buckets]
        for c in self.per_class or []:
            rows += [{"category_id": c["category_id"], **b} for b in c["buckets"]]
        return pl.DataFrame(rows, infer_schema_length=None)

    def __str__(self) -> str:
        f = lambda v, spec="6.3f": "     -" if v is None else format(v, spec)  # noqa: E731
        lines = [f"run {self.run!r}, {self.metric} ({self.bucketing} buckets) at IoU {self.iou:g}"
                 + (f", score >= {self.score:g}" if self.score is not None else ""),
                 f"  {'bucket':<23} {'preds':>8} {'TP':>7} {'FP':>7} {'prec':>6}   {'GT':>7} {'found':>7} "
                 f"{'FN':>6} {'recall':>6}"]
        for b in self.buckets:
            lines.append(f"  [{b['lo']:>9.4g}, {b['hi']:>9.4g}] {f(b['predictions'], '8,d')} {f(b['tp'], '7,d')} "
                         f"{f(b['fp'], '7,d')} {f(b['precision'])}   {f(b['gt'], '7,d')} {f(b['found'], '7,d')} "
                         f"{f(b['fn'], '6,d')} {f(b['recall'])}")
        nulls = [f"{side}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                 for side, counts in self.null.items() if counts and any(counts.values())]
        if nulls:
            lines.append("  no value (not bucketed): " + "; ".join(nulls))
        return "\n".join(lines)


def _check(bucketing: str, buckets: int) -> None:
    from odfail.exceptions import WorkspaceError

    if bucketing not in BUCKETINGS:
        raise WorkspaceError(f"--bucketing {bucketing}: expected equal-width or quantile")
    if buckets < 1:
        raise WorkspaceError(f"--buckets {buckets} must be at least 1")


def _context(workspace, run: str, iou: float, score: float | None) -> Context:
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    return Context(ws, run, iou, score)


def by_metric(workspace: Workspace | str, run: str, metric: str, buckets: int = 10, bucketing: str = "equal-width",
              iou: float = 0.5, score: float | None = None, per_class: bool = False) -> ByMetricResult:
    """Precision (predictions by their value) and recall (GT by theirs) per bucket of ``metric``.

    Example:
        >>> r = by_metric("ws", "baseline", "height", buckets=8)     # doctest: +SKIP
        >>> r.to_polars()                                              # doctest: +SKIP
    """
    _check(bucketing, buckets)
    return by_metric_in(_context(workspace, run, iou, score), metric, buckets, bucketing, per_class)


def by_metric_in(ctx: Context, metric: str, buckets: int = 10, bucketing: str = "equal-width",
                 per_class: bool = False) -> ByMetricResult:
    """`by_metric` over an existing `Context` (several metrics of one run at one IoU read its tables once)."""
    from odfail.analysis.classes import names
    from odfail.analysis.metrics import find

    m = find(ctx.ws, metric)
    j = ctx.join(m)
    pooled = np.concatenate([s["value"][~np.isnan(s["value"])] for s in (j.pred, j.gt) if s is not None])
    edges = edges_of(pooled, buckets, bucketing)
    rows = _bucket_rows(j, edges, bucketing)
    null = {"predictions": None if j.pred is None else {
                "tp": int((np.isnan(j.pred["value"]) & j.pred["tp"]).sum()),
                "fp": int((np.isnan(j.pred["value"]) & ~j.pred["tp"]).sum())},
            "gt": None if j.gt is None else {
                "found": int((np.isnan(j.gt["value"]) & j.gt["found"]).sum()),
                "fn": int((np.isnan(j.gt["value"]) & ~j.gt["found"]).sum())}}
    classes = None
    if per_class:
        name = names(ctx.ws)
        classes = [{"category_id": int(c), "name": name.get(int(c)),
                    "buckets": _bucket_rows(j, edges, bucketing,
                                            None if j.pred is None else j.pred["category_id"] == c,
                                            None if j.gt is None else j.gt["category_id"] == c)}
                   for c in ctx.o.cat_ids]
    return ByMetricResult(ctx.run, metric, float(ctx.iou), ctx.score, bucketing, rows, null, classes)


# ---- importance ----

def _digamma_table(n: int) -> np.ndarray:
    """digamma(k) for k = 0 .. n (k >= 1 used): -Euler's gamma + the harmonic number H(k - 1)."""
    h = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, max(n, 1) + 1))])
    out = np.empty(n + 1)
    out[0] = np.nan
    out[1:] = -np.euler_gamma + h[: n]
    return out


@functools.lru_cache(maxsize=4)
def _tie_noise(n: int) -> np.ndarray:
    """The standard normal draws scikit-learn's ``mutual_info_classif(random_state=0)`` adds to one feature (the
    same for every metric of a side: drawn once)."""
    noise = np.random.RandomState(0).standard_normal(n)
    noise.flags.writeable = False
    return noise


def mutual_information(x: np.ndarray, y: np.ndarray, k: int = K_NEIGHBOURS, order: np.ndarray | None = None
                       ) -> float:
    """Mutual information (nats) between a continuous x and a discrete y: Ross (2014)'s k-nearest-neighbour
    estimator, as scikit-learn's ``mutual_info_classif`` computes it (k = 3), in one dimension: within each class
    the distance to the k-th nearest neighbour of the same class (k = min(k, class size - 1); classes of one point
    left out), then the points of any class within a hair less than that distance (itself included).

    Ties (a count, a rounded score) are broken as scikit-learn breaks them, deterministically: x is scaled to unit
    variance and noise of 1e-10 x max(1, mean |x|) drawn from ``numpy.random.RandomState(0)`` is added, in row
    order; scikit-learn's ``mutual_info_classif(..., random_state=0)`` of the same rows gives the same number.
    ``order``: the argsort of the noisy x, if the caller has it (`_noisy`)."""
    from odfail.analysis._kernels import knn_counts

    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return 0.0
    if order is None:
        x, order = _noisy(x)
    labels, y_index = np.unique(np.asarray(y), return_inverse=True)
    used, k_all, size, m = knn_counts(np.ascontiguousarray(x[order]), np.ascontiguousarray(y_index[order]), k,
                                      len(labels))
    n = int(used.sum())
    if n == 0:
        return 0.0
    psi = _digamma_table(n)
    mi = psi[n] + psi[k_all[used]].mean() - psi[size[used]].mean() - psi[m[used]].mean()
    return max(0.0, float(mi))


def _noisy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x scaled and with scikit-learn's tie-breaking noise (see `mutual_information`), and its argsort."""
    std = x.std()
    if std > 10 * np.finfo(np.float64).eps:
        x = x / std
    x = x + 1e-10 * max(1.0, float(np.mean(np.abs(x)))) * _tie_noise(len(x))
    return x, np.argsort(x)  # (noise leaves no ties worth a stable sort)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their ranks), as Spearman's correlation uses."""
    order = np.argsort(v)  # (ties in any order: they share one rank)
    sv = v[order]
    starts = np.r_[0, np.flatnonzero(sv[1:] != sv[:-1]) + 1]
    ends = np.r_[starts[1:], len(v)]
    avg = (starts + ends - 1) / 2.0
    ranks = np.empty(len(v))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _sample(n: int) -> np.ndarray:
    """Rows read for mutual information and Spearman: all, or a seeded sample of SAMPLE in row order."""
    if n <= SAMPLE:
        return np.arange(n)
    return np.sort(np.random.RandomState(1).choice(n, SAMPLE, replace=False))


def _importance_row(metric: str, side: str, x: np.ndarray, y: np.ndarray, n: int | None = None
                    ) -> dict[str, Any]:
    """mi, pearson and spearman of metric values x against outcomes y (the sampled rows of a side); n: the
    objects with a value in all (default len(x))."""
    n = len(x) if n is None else n
    if not len(x):
        return {"metric": metric, "side": side, "mi": None, "pearson": None, "spearman": None, "n": n}
    noisy, order = _noisy(x)
    n_false = int((~y).sum())  # ranks of a 0/1 variable: the two tie groups' mean ranks
    y_ranks = np.where(y, n_false + (len(y) - n_false - 1) / 2.0, (n_false - 1) / 2.0)
    return {"metric": metric, "side": side, "mi": mutual_information(noisy, y, order=order),
            "pearson": _pearson(x, y.astype(np.float64)), "spearman": _pearson(_ranks(x), y_ranks), "n": n}


@dataclass(frozen=True)
class ImportanceResult:
    """One row per (metric, side) ranked by ``mi``: mi (nats), pearson, spearman, n (objects with a value)."""

    run: str
    iou: float
    score: float | None
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "iou": self.iou, "score": self.score, "metrics": self.rows}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(self.rows, schema={"metric": pl.String, "side": pl.String, "mi": pl.Float64,
                                               "pearson": pl.Float64, "spearman": pl.Float64, "n": pl.Int64})

    def __str__(self) -> str:
        f = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
        lines = [f"run {self.run!r}: which metrics explain the outcome at IoU {self.iou:g} (TP for predictions, "
                 "found for GT)", f"  {'metric':<20} {'side':<12} {'MI':>6} {'pearson':>8} {'spearman':>8} {'n':>9}"]
        lines += [f"  {r['metric']:<20} {r['side']:<12} {f(r['mi'])} {f(r['pearson']):>8} {f(r['spearman']):>8} "
                  f"{r['n']:>9,}" for r in self.rows]
        return "\n".join(lines)


def importance(workspace: Workspace | str, run: str, iou: float = 0.5, score: float | None = None
               ) -> ImportanceResult:
    """Every metric against the outcome, per side: mutual information, Pearson and Spearman correlation.

    Example:
        >>> importance("ws", "baseline").to_polars().head()   # doctest: +SKIP
    """
    return importance_in(_context(workspace, run, iou, score))


def importance_in(ctx: Context) -> ImportanceResult:
    """`importance` over an existing `Context`."""
    from concurrent.futures import ThreadPoolExecutor

    from odfail.analysis.metrics import registry

    tasks = []
    sample = {side: _sample(n) for side, n in (("predictions", len(ctx.p_rows)), ("gt", len(ctx.g_rows)))}
    for m in registry(ctx.ws):
        j = ctx.join(m)
        for side, part, flag in (("predictions", j.pred, "tp"), ("gt", j.gt, "found")):
            if part is not None:
                x, y = part["value"][sample[side]], part[flag][sample[side]]
                ok = ~np.isnan(x)
                tasks.append((m.name, side, x[ok], y[ok], int(len(part["value"]) - np.isnan(part["value"]).sum())))
    # sorting and the k-NN kernel release the GIL: both cores
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(lambda task: _importance_row(*task), tasks))
    rows.sort(key=lambda r: -1.0 if r["mi"] is None else -r["mi"])
    return ImportanceResult(ctx.run, float(ctx.iou), ctx.score, rows)


# ---- outliers ----

MODERATE, SEVERE = 1.5, 2.5


@dataclass(frozen=True)
class OutliersResult:
    """Per side of the metric: quartiles (numpy's linear interpolation, Hyndman-Fan type 7), IQR, the moderate
    (1.5 x IQR) and severe (2.5 x IQR) fences, the counts outside them, and the objects outside the moderate fences
    (``objects``: id, image_id, category_id, value, severity), farthest first, at most ``limit``."""

    run: str
    metric: str
    sides: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "metric": self.metric, "sides": self.sides}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame([{"side": s["side"], **o} for s in self.sides for o in s["objects"]],
                            infer_schema_length=None)

    def __str__(self) -> str:
        lines = [f"run {self.run!r}: outliers of {self.metric}"]
        for s in self.sides:
            lines.append(f"  {s['side']}: Q1 {s['q1']:.4g}, Q3 {s['q3']:.4g}, IQR {s['iqr']:.4g}; moderate outside "
                         f"[{s['moderate'][0]:.4g}, {s['moderate'][1]:.4g}]: {s['n_moderate']:,}, severe outside "
                         f"[{s['severe'][0]:.4g}, {s['severe'][1]:.4g}]: {s['n_severe']:,} of {s['n']:,}")
            for o in s["objects"][:10]:
                lines.append(f"    {o['severity']:<8} {s['key']} {o['id']} image {o['image_id']} "
                             f"value {o['value']:.4g}")
        return "\n".join(lines)


def outliers(workspace: Workspace | str, run: str, metric: str, limit: int = 100) -> OutliersResult:
    """Objects (or images) whose metric lies outside the IQR fences, as Encord Active flags them."""
    from odfail.analysis.metrics import DYNAMIC, find, metric_tables
    from odfail.store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require_run(run)
    m = find(ws, metric)
    t = metric_tables(ws, run)
    if m.name in DYNAMIC:
        d = Context(ws, run, 0.5, None).dynamic()
        parts = [("images", "image_id", d["image_id"], d[m.name], d["image_id"], None)]
    else:
        on_pred, on_gt = _sides(m)
        parts = []
        if m.on == "images":
            parts.append(("images", "image_id", t.images["image_id"], t.images[m.name], t.images["image_id"], None))
        else:
            if on_pred:
                p = t.predictions
                parts.append(("predictions", "pred_id", p["pred_id"], p[m.name], p["image_id"], p["category_id"]))
            if on_gt:
                parts.append(("gt", "gt_id", t.gt["gt_id"], t.gt[m.name], t.gt["image_id"], t.gt["category_id"]))
    sides = []
    for side, key, ids, values, image_ids, cats in parts:
        v = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(v)
        if not ok.any():
            continue
        q1, q3 = (float(q) for q in np.quantile(v[ok], [0.25, 0.75]))
        iqr = q3 - q1
        mod = (q1 - MODERATE * iqr, q3 + MODERATE * iqr)
        sev = (q1 - SEVERE * iqr, q3 + SEVERE * iqr)
        out = ok & ((v < mod[0]) | (v > mod[1]))
        severe = ok & ((v < sev[0]) | (v > sev[1]))
        rows = np.flatnonzero(out)
        distance = np.maximum(mod[0] - v[rows], v[rows] - mod[1])
        rows = rows[np.argsort(-distance, kind="stable")][:limit]
        objects = [{"id": int(ids[r]), "image_id": int(image_ids[r]),
                    "category_id": None if cats is None else int(cats[r]), "value": float(v[r]),
                    "severity": "severe" if severe[r] else "moderate"} for r in rows]
        sides.append({"side": side, "key": key, "n": int(ok.sum()), "q1": q1, "q3": q3, "iqr": iqr,
                      "moderate": list(mod), "severe": list(sev), "n_moderate": int(out.sum()),
                      "n_severe": int(severe.sum()), "objects": objects})
    return OutliersResult(run, metric, sides)
