"""The report's charts: Altair charts over `ReportData`'s small tables, one question each.

Colours mean one thing everywhere (Okabe-Ito, colour-blind safe): TP green, FP vermillion, FN blue; each TIDE
error type its own colour (Miss, a missed object, is FN's blue). Widgets are Altair parameters bound to inputs, so
the page needs no server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt

    from odfail.report.data import ReportData

OUTCOME_COLOURS = {"TP": "#009E73", "FP": "#D55E00", "FN": "#0072B2"}
ERROR_COLOURS = {"Cls": "#E69F00", "Loc": "#56B4E9", "Both": "#CC79A7", "Dupe": "#C9A800", "Bkg": "#999999",
                 "Miss": "#0072B2"}
SIDE_COLOURS = {"predictions": "#332288", "gt": "#882255"}  # indigo, wine: not an outcome
TOP = 25  # rows of a long-tailed bar chart before "the rest"
WIDTH = 560


@dataclass
class Figure:
    """One chart of the report: an id, the question it answers, a sentence on how to read it, the chart."""

    id: str
    question: str
    how: str
    chart: alt.TopLevelMixin
    scroll: bool = False  # tall: shown in a scrolling box
    datasets: dict[str, list] | None = None  # the data of `_src` sources, added to the spec by name


def _attach(datasets: dict[str, list], figures):
    """Give a builder's figures (one or a list) the datasets their charts name (a figure made by another builder
    keeps its own)."""
    for f in figures if isinstance(figures, list) else [figures]:
        if f.datasets is None:
            f.datasets = datasets
    return figures


def _src(datasets: dict[str, list], rows: list) -> alt.Data:
    """A chart's data by name: Altair never copies or validates the rows (at 80 classes that took seconds); `spec`
    puts them in the spec's ``datasets``."""
    import altair as alt

    name = f"d{len(datasets)}"
    datasets[name] = rows
    return alt.Data(name=name)


def _scale(colours: dict[str, str]) -> alt.Scale:
    import altair as alt

    return alt.Scale(domain=list(colours), range=list(colours.values()))


def _names(d: ReportData) -> dict[int, str]:
    return {r["category_id"]: r["name"] for r in d.per_class}


# ---- 2. errors ----

def errors(d: ReportData) -> list[Figure]:
    import altair as alt

    ds: dict[str, list] = {}

    types = list(ERROR_COLOURS)
    dap = [{"type": t, "dAP": d.errors["dAP"][t], "count": d.errors["counts"][t]} for t in types]
    total = sum(r["dAP"] for r in dap) or 1.0
    for r in dap:
        r["share"] = r["dAP"] / total
    base = alt.Chart(_src(ds, dap))
    colour = alt.Color("type:N", scale=_scale(ERROR_COLOURS), legend=None)
    dap_chart = base.mark_bar().encode(
        x=alt.X("dAP:Q", title="dAP: AP gained by fixing this error type alone"),
        y=alt.Y("type:N", sort=types, title=None), color=colour,
        tooltip=[alt.Tooltip("type:N"), alt.Tooltip("dAP:Q", format=".4f"),
                 alt.Tooltip("share:Q", format=".1%", title="share of the six"), alt.Tooltip("count:Q")],
    ).properties(width=WIDTH, height=180)
    count_chart = base.mark_bar().encode(
        x=alt.X("count:Q", title="errors (predictions; Miss: GT objects)"),
        y=alt.Y("type:N", sort=types, title=None), color=colour,
        tooltip=[alt.Tooltip("type:N"), alt.Tooltip("count:Q", format=",")],
    ).properties(width=WIDTH, height=180)
    # false positives per class and type, the TOP classes with the most
    pc = d.errors["per_class"]
    names = _names(d)
    rows = []
    for i, cat in enumerate(pc["category_id"]):
        for t in types[:5]:
            rows.append({"class": names.get(cat, str(cat)), "type": t, "n": pc[t][i]})
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["class"]] = totals.get(r["class"], 0) + r["n"]
    top = sorted(totals, key=lambda c: -totals[c])[:TOP]
    rows = [r for r in rows if r["class"] in top and r["n"] > 0]
    fp_chart = alt.Chart(_src(ds, rows)).mark_bar().encode(
        x=alt.X("sum(n):Q", title="false positives"), y=alt.Y("class:N", sort=top, title=None),
        color=alt.Color("type:N", scale=_scale({t: ERROR_COLOURS[t] for t in types[:5]}),
                        legend=alt.Legend(title="error type", orient="bottom")),
        order=alt.Order("type_order:Q"),
        tooltip=[alt.Tooltip("class:N"), alt.Tooltip("type:N"), alt.Tooltip("n:Q", format=",", title="count")],
    ).transform_calculate(type_order=f"indexof({list(types[:5])}, datum.type)").properties(
        width=WIDTH, height=16 * len(top))
    return _attach(ds, [
        Figure("errors-dap", "Which kinds of error cost the most AP?",
               "Each bar is the AP (tidecv's, at IoU 0.5) gained if that one error type were fixed: fix the longest "
               "bar first. Cls = right box, wrong class; Loc = right class, poor box; Both = both wrong; Dupe = a "
               "second detection of a found object; Bkg = nothing there; Miss = an object nobody found.",
               dap_chart),
        Figure("errors-count", "How many errors of each type are there?",
               "Counts of predictions of each error type (Miss counts GT objects). Many errors with a small dAP are "
               "usually low-scoring ones.", count_chart),
        Figure("errors-per-class", f"Which classes produce the most false positives, and of what kind? (top {TOP})",
               "False positives per predicted class, split by error type; classes with the most first.", fp_chart),
        _confusion(d),
    ])


def _confusion(d: ReportData) -> Figure:
    import altair as alt

    ds: dict[str, list] = {}

    c = d.confusion
    labels, m = c["labels"], c["matrix"]
    n = len(labels) - 1
    # the classes most involved in confusions (off the diagonal, background excluded), then background
    involvement = [sum(m[i][j] + m[j][i] for j in range(n) if j != i) for i in range(n)]
    keep = sorted(range(n), key=lambda i: -involvement[i])[:15]
    keep = sorted(keep, key=lambda i: labels[i]) + [n]
    rows = [{"actual": labels[i], "predicted": labels[j], "n": m[i][j]} for i in keep for j in keep if m[i][j] > 0]
    order = [labels[i] for i in keep]
    base = alt.Chart(_src(ds, rows)).encode(
        x=alt.X("predicted:N", sort=order, title="predicted class", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("actual:N", sort=order, title="actual class (GT)"))
    heat = base.mark_rect().encode(
        color=alt.Color("n:Q", scale=alt.Scale(type="log", scheme="purples"), title="count (log)"),
        tooltip=[alt.Tooltip("actual:N"), alt.Tooltip("predicted:N"), alt.Tooltip("n:Q", format=",")])
    dark = max((r["n"] for r in rows), default=1) ** 0.6  # cells darker than this get white text
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("n:Q", format=","),
        color=alt.condition(f"datum.n >= {dark}", alt.value("#ffffff"), alt.value("#222222")))
    chart = (heat + text).properties(width=WIDTH, height=WIDTH)
    return _attach(ds, Figure("confusion", "Which classes are confused with which?",
                  "One-to-one at IoU 0.5: rows are the GT class, columns the predicted class, the last row and column "
                  "background (a false positive on nothing / a missed object). The 15 classes most involved in "
                  "confusions are shown; the diagonal holds the correct detections.", chart))


# ---- 3. per class ----

def per_class(d: ReportData) -> list[Figure]:
    import altair as alt

    ds: dict[str, list] = {}

    rows = [r for r in d.per_class if r["gt"] > 0]
    rows.sort(key=lambda r: (r["ap"] if r["ap"] is not None else -1, r["name"] or ""))
    order = [r["name"] for r in rows]
    long = []
    for r in rows:
        for outcome, side in (("TP", "gt"), ("FN", "gt"), ("TP", "pred"), ("FP", "pred")):
            long.append({"class": r["name"], "outcome": outcome, "side": side, "n": r[outcome.lower()],
                         "rank": {"TP": 0, "FN": 1, "FP": 1}[outcome]})
    height = 15 * len(rows)
    top = alt.Axis(orient="top", format="%", values=[0, 0.25, 0.5, 0.75, 1])
    legend = alt.Legend(orient="top", title=None)
    colour = alt.Color("outcome:N", scale=_scale(OUTCOME_COLOURS), legend=legend)
    tip = [alt.Tooltip("class:N"), alt.Tooltip("outcome:N"), alt.Tooltip("n:Q", format=",")]
    ap = alt.Chart(_src(ds, rows)).mark_bar(color="#555555").encode(
        x=alt.X("ap:Q", title=f"AP at IoU {d.iou:g}", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(orient="top")),
        y=alt.Y("name:N", sort=order, title=None),
        tooltip=[alt.Tooltip("name:N", title="class"), alt.Tooltip("ap:Q", format=".3f", title="AP"),
                 alt.Tooltip("ap_50_95:Q", format=".3f", title="AP .50:.95"),
                 alt.Tooltip("recall:Q", format=".3f"), alt.Tooltip("precision:Q", format=".3f"),
                 alt.Tooltip("gt:Q", format=",", title="GT")],
    ).properties(width=200, height=height)
    found = alt.Chart(_src(ds, long)).transform_filter("datum.side == 'gt'").mark_bar().encode(
        x=alt.X("n:Q", stack="normalize", title="its GT objects: found (TP) / missed (FN)", axis=top),
        y=alt.Y("class:N", sort=order, axis=None), color=colour, order=alt.Order("rank:Q"), tooltip=tip,
    ).properties(width=200, height=height)
    right = alt.Chart(_src(ds, long)).transform_filter("datum.side == 'pred'").mark_bar().encode(
        x=alt.X("n:Q", stack="normalize", title="its predictions: right (TP) / wrong (FP)", axis=top),
        y=alt.Y("class:N", sort=order, axis=None), color=colour, order=alt.Order("rank:Q"), tooltip=tip,
    ).properties(width=200, height=height)
    chart = alt.hconcat(ap, found, right, spacing=14)
    score = f" and score ≥ {d.score:g}" if d.score is not None else ""
    return _attach(ds, [Figure("per-class", "Which classes does the model get wrong most?",
                   f"Every class with GT, weakest AP first (at IoU {d.iou:g}{score}): its AP, the share of its objects "
                   "found (green) or missed (blue) - recall - and the share of its predictions that are right "
                   "(green) or false positives (vermillion) - precision. Hover for the counts; scroll for all "
                   "classes.", chart, scroll=len(rows) > 40)])


# ---- 4. quantitative analysis ----

def importance(d: ReportData) -> Figure:
    import altair as alt

    ds: dict[str, list] = {}

    rows = [dict(r, label=f"{r['metric']} ({'GT' if r['side'] == 'gt' else 'pred.'})") for r in d.importance
            if r["mi"] is not None]
    order = [r["label"] for r in rows]
    side = alt.Color("side:N", scale=_scale(SIDE_COLOURS), legend=alt.Legend(orient="top", title="objects"))
    tip = [alt.Tooltip("metric:N"), alt.Tooltip("side:N"), alt.Tooltip("mi:Q", format=".4f", title="MI (nats)"),
           alt.Tooltip("pearson:Q", format=".3f"), alt.Tooltip("spearman:Q", format=".3f"),
           alt.Tooltip("n:Q", format=",")]
    base = alt.Chart(_src(ds, rows))
    mi = base.mark_bar().encode(x=alt.X("mi:Q", title="mutual information with the outcome (nats)"),
                                y=alt.Y("label:N", sort=order, title=None), color=side, tooltip=tip
                                ).properties(width=260, height=14 * len(rows))
    corr = base.mark_bar().encode(
        x=alt.X("spearman:Q", title="Spearman correlation with the outcome", scale=alt.Scale(domain=[-1, 1])),
        y=alt.Y("label:N", sort=order, axis=None), color=side, tooltip=tip).properties(width=220,
                                                                                       height=14 * len(rows))
    return _attach(ds, Figure(
        "importance", "Which quality metrics explain whether a prediction is right or an object is found?",
        "Mutual information (k-NN estimate, as scikit-learn's) between each metric and the outcome: TP vs "
        "FP for predictions (indigo), found vs missed for GT objects (wine). Longer bars explain more; "
        "the correlation's sign says in which direction. best_iou is the matching itself, so it leads by "
        "construction: read the metrics below it.", alt.hconcat(mi, corr, spacing=10)))


def by_metric(d: ReportData) -> Figure:
    import altair as alt

    ds: dict[str, list] = {}

    rows, bars_rows = [], []
    for r in d.by_metric:
        for b in r["buckets"]:
            mid = (b["lo"] + b["hi"]) / 2
            rows.append({"m": r["metric"], "lo": b["lo"], "hi": b["hi"], "x": mid, "precision": b["precision"],
                         "recall": b["recall"]})
            y0 = 0
            for outcome in ("TP", "FP", "FN"):  # stacked by hand: a rect spans [lo, hi] x [y0, y1]
                n = b[outcome.lower()]
                if n:
                    bars_rows.append({"m": r["metric"], "lo": b["lo"], "hi": b["hi"], "outcome": outcome, "n": n,
                                      "y0": y0, "y1": y0 + n})
                    y0 += n
    names = [r["metric"] for r in d.by_metric]
    first = next((r["metric"] for r in d.importance if r["mi"] is not None), names[0])
    metric = alt.param(name="metric", value=first, bind=alt.binding_select(options=names, name="metric "))
    counts = alt.param(name="show_counts", value=True, bind=alt.binding_checkbox(name="show outcome counts "))
    base = alt.Chart(_src(ds, rows)).transform_filter("datum.m == metric")
    lines = base.transform_fold(["precision", "recall"], as_=["measure", "value"]).transform_filter(
        "isValid(datum.value)").mark_line(point=True).encode(
        x=alt.X("x:Q", title="metric value (bucket middle; the selected metric)"),
        y=alt.Y("value:Q", title="precision / recall", scale=alt.Scale(domain=[0, 1])),
        strokeDash=alt.StrokeDash("measure:N", scale=alt.Scale(domain=["precision", "recall"],
                                                               range=[[1, 0], [6, 4]]),
                                  legend=alt.Legend(orient="top", title=None)),
        color=alt.value("#222222"),
        tooltip=[alt.Tooltip("m:N", title="metric"), alt.Tooltip("lo:Q", format=".4g", title="from"),
                 alt.Tooltip("hi:Q", format=".4g", title="to"), alt.Tooltip("measure:N"),
                 alt.Tooltip("value:Q", format=".3f")]).properties(width=WIDTH, height=220)
    bars = alt.Chart(_src(ds, bars_rows)).transform_filter("datum.m == metric && show_counts").mark_rect(
        opacity=0.85, stroke="#ffffff", strokeWidth=0.5).encode(
        x=alt.X("lo:Q", title="metric value"), x2="hi", y=alt.Y("y0:Q", title="objects"), y2="y1",
        color=alt.Color("outcome:N", scale=_scale(OUTCOME_COLOURS), legend=alt.Legend(orient="bottom", title=None)),
        tooltip=[alt.Tooltip("lo:Q", format=".4g", title="from"), alt.Tooltip("hi:Q", format=".4g", title="to"),
                 alt.Tooltip("outcome:N"), alt.Tooltip("n:Q", format=",")]).properties(width=WIDTH, height=140)
    chart = alt.vconcat(lines, bars, spacing=8).add_params(metric, counts).resolve_scale(color="independent")
    return _attach(ds, Figure(
        "by-metric", "Where along a quality metric does the model fail?",
        "Pick a metric: precision of the predictions in each bucket of its value (solid) and recall of the "
        "GT objects in each bucket (dashed), at IoU " + f"{d.iou:g}. The bars under it count TP, FP "
        "and FN per bucket: a dip in a bucket with few objects means little. `odfail metrics` explains "
        "each metric.", chart))


def pr_curves(d: ReportData) -> Figure:
    import altair as alt

    ds: dict[str, list] = {}

    from odfail.report.data import PR_IOUS, PR_POINTS

    names = _names(d)
    rows = [dict(r, n=names.get(r["k"], "all classes (mean)") if r["k"] >= 0 else "all classes (mean)")
            for r in d.pr]
    ids = sorted({r["k"] for r in d.pr if r["k"] >= 0}, key=lambda k: names.get(k, ""))
    iou = alt.param(name="pr_iou", value=0.5, bind=alt.binding_range(min=PR_IOUS[0], max=PR_IOUS[-1], step=0.05,
                                                                   name="IoU threshold "))
    cls = alt.param(name="pr_class", value=-2, bind=alt.binding_select(
        options=[-2, *ids], labels=["(none)", *[names.get(k, str(k)) for k in ids]], name="class "))
    decompose = alt.param(name="decompose", value=False, bind=alt.binding_checkbox(name="decompose by class "))
    step = float(PR_POINTS[1] - PR_POINTS[0]) / 100
    base = alt.Chart(_src(ds, rows)).transform_filter("abs(datum.i - pr_iou) < 0.001").transform_flatten(
        ["p"]).transform_window(j="row_number()", groupby=["i", "k"]).transform_calculate(
        r=f"(datum.j - 1) * {step}").transform_filter("datum.p >= 0")
    x = alt.X("r:Q", title="recall", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("p:Q", title="precision (COCO 101-point interpolation)", scale=alt.Scale(domain=[0, 1]))
    each = base.transform_filter("decompose && datum.k >= 0").mark_line(strokeWidth=1, opacity=0.35,
                                                                         color="#8c8c8c").encode(
        x=x, y=y, detail="k:N", tooltip=[alt.Tooltip("n:N", title="class"), alt.Tooltip("ap:Q", format=".3f")])
    main = base.transform_filter("datum.k == -1 || datum.k == pr_class").transform_calculate(
        curve="datum.k == -1 ? 'all classes (mean)' : 'selected class'").mark_line(strokeWidth=2.5).encode(
        x=x, y=y, color=alt.Color("curve:N", scale=alt.Scale(domain=["all classes (mean)", "selected class"],
                                                              range=["#000000", ERROR_COLOURS["Cls"]]),
                                  legend=alt.Legend(orient="top", title=None)),
        detail="k:N", tooltip=[alt.Tooltip("n:N", title="curve"), alt.Tooltip("ap:Q", format=".3f", title="AP"),
                               alt.Tooltip("r:Q", format=".2f", title="recall"),
                               alt.Tooltip("p:Q", format=".3f", title="precision")])
    def label(which: str, y_pixels: int, colour: str):
        return alt.Chart(_src(ds, rows)).transform_filter(f"abs(datum.i - pr_iou) < 0.001 && {which}"
                                                                 ).transform_calculate(
            text="(datum.k == -1 ? 'mAP ' : datum.n + ': AP ') + format(datum.ap, '.3f') + ' at IoU ' + "
                 "format(datum.i, '.2f')").mark_text(align="right", fontSize=13, fontWeight="bold").encode(
            x=alt.value(WIDTH - 8), y=alt.value(y_pixels), text="text:N", color=alt.value(colour))

    chart = alt.layer(each, main, label("datum.k == -1", 16, "#000000"),
                      label("datum.k == pr_class", 34, ERROR_COLOURS["Cls"])).add_params(
        iou, cls, decompose).properties(width=WIDTH, height=380)
    return _attach(ds, Figure(
        "pr", "How does the precision-recall trade-off change from a lenient to a strict IoU?",
        "Slide the IoU threshold (0.10 to 0.90): the black curve is the mean of the per-class curves (its "
        "area is mAP at that IoU). Pick a class to draw its curve; tick 'decompose' to draw every class.",
        chart))


def calibration(d: ReportData) -> Figure:
    import altair as alt

    ds: dict[str, list] = {}

    c = d.calibration
    rows = [dict(b, mid=(b["lo"] + b["hi"]) / 2) for b in c["bins"]]
    base = alt.Chart(_src(ds, rows))
    bars = base.transform_filter("datum.n > 0").mark_rect(color=OUTCOME_COLOURS["TP"], opacity=0.8,
                                                          stroke="#ffffff").encode(
        x=alt.X("lo:Q", title="score", scale=alt.Scale(domain=[0, 1])), x2="hi",
        y=alt.Y("precision:Q", title="share of TP (precision)", scale=alt.Scale(domain=[0, 1])), y2=alt.datum(0),
        tooltip=[alt.Tooltip("lo:Q", title="from", format=".2f"), alt.Tooltip("hi:Q", title="to", format=".2f"),
                 alt.Tooltip("n:Q", format=","), alt.Tooltip("mean_score:Q", format=".3f"),
                 alt.Tooltip("precision:Q", format=".3f")])
    dots = base.transform_filter("datum.n > 0").mark_point(filled=True, color="#000000").encode(
        x="mean_score:Q", y="precision:Q")
    diagonal = alt.Chart(_src(ds, [{"v": 0}, {"v": 1}])).mark_line(strokeDash=[4, 4], color="#555555").encode(
        x="v:Q", y="v:Q")
    top = alt.layer(bars, diagonal, dots).properties(width=WIDTH, height=280)
    counts = base.mark_rect(color="#777777", stroke="#ffffff").encode(
        x=alt.X("lo:Q", title="score", scale=alt.Scale(domain=[0, 1])), x2="hi",
        y=alt.Y("n:Q", title="predictions"), y2=alt.datum(0),
        tooltip=[alt.Tooltip("n:Q", format=",")]).properties(width=WIDTH, height=90)
    ece = "—" if c["ece"] is None else f"{c['ece']:.3f}"
    outside = f" {c['outside_0_1']:,} scores outside [0, 1] are not binned." if c["outside_0_1"] else ""
    return _attach(ds, Figure(
        "calibration", f"Does a score of 0.9 mean 90 % right? (ECE {ece})",
        f"Bars: the share of true positives among the predictions in each score bin (at IoU {d.iou:g}); "
        "dots: the bin's mean score; a calibrated model stays on the dashed diagonal. Below: how many "
        "predictions each bin holds." + outside, alt.vconcat(top, counts, spacing=6)))


# ---- 5. distribution ----

def distribution(d: ReportData) -> list[Figure]:
    import altair as alt

    ds: dict[str, list] = {}

    freq = d.distribution["class_frequency"]
    top = freq[:TOP]
    rest = freq[TOP:]
    rows = []
    for r in top:
        rows += [{"class": r["name"], "what": "GT", "n": r["gt"]},
                 {"class": r["name"], "what": "predictions", "n": r["predictions_above_score"]}]
    if rest:
        label = f"the other {len(rest)} classes"
        rows += [{"class": label, "what": "GT", "n": sum(r["gt"] for r in rest)},
                 {"class": label, "what": "predictions", "n": sum(r["predictions_above_score"] for r in rest)}]
    order = [r["name"] for r in top] + ([f"the other {len(rest)} classes"] if rest else [])
    score = f" scoring ≥ {d.score:g}" if d.score is not None else ""
    freq_chart = alt.Chart(_src(ds, rows)).mark_bar().encode(
        y=alt.Y("class:N", sort=order, title=None), yOffset="what:N", x=alt.X("n:Q", title="objects"),
        color=alt.Color("what:N", scale=alt.Scale(domain=["GT", "predictions"],
                                                  range=[SIDE_COLOURS["gt"], SIDE_COLOURS["predictions"]]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=[alt.Tooltip("class:N"), alt.Tooltip("what:N"), alt.Tooltip("n:Q", format=",")],
    ).properties(width=WIDTH, height=22 * len(order))
    sizes = [r for r in d.distribution["sizes"] if r["side"] == "gt"]
    by_total = sorted(sizes, key=lambda r: -(r["small"] + r["medium"] + r["large"]))[:TOP]
    size_rows = [{"class": r["name"], "size": s, "n": r[s]} for r in by_total for s in ("small", "medium", "large")]
    size_chart = alt.Chart(_src(ds, size_rows)).mark_bar().encode(
        y=alt.Y("class:N", sort=[r["name"] for r in by_total], title=None),
        x=alt.X("n:Q", stack="normalize", title="share of the class's GT objects", axis=alt.Axis(format="%")),
        color=alt.Color("size:N", scale=alt.Scale(domain=["small", "medium", "large"],
                                                  range=["#d9d9d9", "#969696", "#404040"]),
                        legend=alt.Legend(orient="top", title="COCO size")),
        order=alt.Order("size_order:Q"),
        tooltip=[alt.Tooltip("class:N"), alt.Tooltip("size:N"), alt.Tooltip("n:Q", format=",")],
    ).transform_calculate(size_order="indexof(['small', 'medium', 'large'], datum.size)").properties(
        width=WIDTH, height=16 * len(by_total))
    per_image = alt.Chart(_src(ds, d.distribution["objects_per_image"])).mark_bar(
        color="#555555").encode(
        x=alt.X("objects:O", title="GT objects in the image"), y=alt.Y("images:Q", title="images"),
        tooltip=[alt.Tooltip("objects:O"), alt.Tooltip("images:Q", format=",")]).properties(width=WIDTH, height=200)
    pairs = d.distribution["co_occurrence"][:20]
    pair_rows = [{"pair": f"{p['name_a']} + {p['name_b']}", "images": p["images"]} for p in pairs]
    pair_chart = alt.Chart(_src(ds, pair_rows)).mark_bar(color="#555555").encode(
        y=alt.Y("pair:N", sort=[r["pair"] for r in pair_rows], title=None), x=alt.X("images:Q", title="images"),
        tooltip=[alt.Tooltip("pair:N"), alt.Tooltip("images:Q", format=",")]).properties(
        width=WIDTH - 120, height=16 * max(len(pair_rows), 1))
    return _attach(ds, [
        Figure("class-frequency", f"Which classes dominate the data, and does the model predict them as often? "
               f"(top {TOP})", f"GT objects (wine) and predictions{score} (indigo) per class, most frequent GT "
               "first; the long tail is summed in the last row.", freq_chart),
        Figure("sizes", f"How big are the objects of each class? (top {TOP})",
               "The share of each class's GT objects that is small (< 32² px), medium or large (> 96² px) by COCO "
               "area: small objects are missed most.", size_chart),
        Figure("objects-per-image", "How crowded are the images?",
               "How many images hold 0, 1, 2, ... GT objects (crowd regions not counted).", per_image),
        Figure("co-occurrence", "Which classes appear together?",
               "The 20 pairs of classes found in the most images together: classes confused with each other often "
               "share scenes.", pair_chart),
    ])


# ---- 7. compare ----

def compare(d: ReportData) -> list[Figure]:
    import altair as alt

    ds: dict[str, list] = {}

    c = d.compare
    rows = [r for r in c["per_class"] if r["ap_delta"] is not None and r["gt"] > 0][:TOP]
    for r in rows:
        r["direction"] = "better" if r["ap_delta"] > 0 else "worse"
    delta = alt.Chart(_src(ds, rows)).mark_bar().encode(
        y=alt.Y("name:N", sort=[r["name"] for r in rows], title=None),
        x=alt.X("ap_delta:Q", title=f"AP change at IoU {d.iou:g} ({c['b']} minus {c['a']})"),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["better", "worse"],
                                                       range=[OUTCOME_COLOURS["TP"], OUTCOME_COLOURS["FP"]]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=[alt.Tooltip("name:N", title="class"), alt.Tooltip("ap_a:Q", format=".3f", title=f"AP {c['a']}"),
                 alt.Tooltip("ap_b:Q", format=".3f", title=f"AP {c['b']}"),
                 alt.Tooltip("ap_delta:Q", format="+.3f", title="change"), alt.Tooltip("tp_delta:Q", title="TP change"),
                 alt.Tooltip("fp_delta:Q", title="FP change"), alt.Tooltip("fn_delta:Q", title="FN change")],
    ).properties(width=WIDTH, height=16 * max(len(rows), 1))
    err = []
    for side in ("a", "b"):
        for t in ERROR_COLOURS:
            err.append({"run": c[side], "type": t, "dAP": c["errors"][side]["dap"][t],
                        "count": c["errors"][side]["counts"][t]})
    err_chart = alt.Chart(_src(ds, err)).mark_bar().encode(
        y=alt.Y("type:N", sort=list(ERROR_COLOURS), title=None), yOffset=alt.YOffset("run:N", sort=[c["a"], c["b"]]),
        x=alt.X("dAP:Q", title="dAP (AP gained by fixing the type)"),
        color=alt.Color("type:N", scale=_scale(ERROR_COLOURS), legend=None),
        opacity=alt.Opacity("run:O", sort=[c["a"], c["b"]], scale=alt.Scale(domain=[c["a"], c["b"]],
                                                                             range=[0.45, 1.0]),
                            legend=alt.Legend(orient="top", title="run (pale: the old one)")),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("type:N"), alt.Tooltip("dAP:Q", format=".4f"),
                 alt.Tooltip("count:Q", format=",")]).properties(width=WIDTH, height=260)
    return _attach(ds, [
        Figure("compare-classes", f"Which classes got better and which got worse? (the {TOP} largest changes)",
               f"AP change per class from run {c['a']} to run {c['b']}, the largest changes first; hover for the TP, "
               "FP and FN changes.", delta),
        Figure("compare-errors", "Which kinds of error did the change fix?",
               f"dAP per error type for run {c['a']} (pale) and run {c['b']} (solid): a shorter solid bar is an "
               "error type the new run makes less costly.", err_chart),
    ])


def figures(d: ReportData) -> dict[str, list[Figure]]:
    """Every chart of the report by section (the headline and worst cases are tables)."""
    out = {"errors": errors(d), "classes": per_class(d),
           "quantitative": [importance(d), by_metric(d), pr_curves(d), calibration(d)],
           "distribution": distribution(d)}
    if d.compare is not None:
        out["compare"] = compare(d)
    return out


def spec(figure: Figure) -> dict[str, Any]:
    """The Vega-Lite spec of a figure, with the report's look and its data."""
    import json

    chart = figure.chart.configure(font="Helvetica, Arial, sans-serif").configure_axis(
        labelFontSize=11, titleFontSize=12, labelLimit=220).configure_view(stroke=None)
    out = chart.to_dict(validate=False)
    used = json.dumps(out)
    out["datasets"] = {name: rows for name, rows in (figure.datasets or {}).items() if f'"{name}"' in used}
    return out
