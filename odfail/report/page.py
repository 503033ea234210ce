"""One self-contained HTML page: the report's sections, tables and charts, with Vega, Vega-Lite and vega-embed
inlined (the bundle vl-convert-python builds; nothing is fetched from a network).

Every user-provided string (class names, run names, file names) reaches the page through one of two functions:
`text` for HTML (escaped) and `script_json` for data inside a ``<script>`` (JSON with ``<``, ``>`` and ``&``
escaped, so no string can end the script). Vega draws chart text as SVG text and vega-embed's tooltips escape
HTML, so class names are never markup.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odfail.report.charts import Figure
    from odfail.report.data import ReportData


def text(value: Any) -> str:
    """A value as HTML text: the one way user strings enter the page's markup."""
    return html.escape("" if value is None else str(value), quote=True)


def script_json(value: Any) -> str:
    """A value as JSON safe inside a <script> element: the one way data enters the page's scripts."""
    return (json.dumps(value, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def bundle() -> str:
    """vega-embed, Vega-Lite and Vega as one script, built by vl-convert-python once per its version (~1.3 s)
    and kept beside the code (or in the temporary folder where that is read-only)."""
    import tempfile

    import vl_convert

    name = f"odfail-vega-bundle-{vl_convert.__version__}.js"
    for folder in (Path(__file__).parent / "__pycache__", Path(tempfile.gettempdir())):
        path = folder / name
        if path.exists():
            return path.read_text()
    js = vl_convert.javascript_bundle()
    if "</script" in js.lower():  # never so far; it would end the page's script early
        js = js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    for folder in (Path(__file__).parent / "__pycache__", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{name}.{os.getpid()}.tmp"
            tmp.write_text(js)
            os.replace(tmp, folder / name)
            break
        except OSError:
            continue
    return js


class Html(str):
    """Markup the page itself made (a picture's <img>), which `table` puts in a cell as it is."""


def _num(v: Any, spec: str = ".3f") -> str:
    if isinstance(v, Html):
        return v
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return text(v)
    return format(v, ",d") if isinstance(v, int) else format(v, spec)


def table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_num(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{text(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(f: Figure) -> str:
    box = ' class="scroll"' if f.scroll else ""
    return (f'<figure id="{text(f.id)}"><h3>{text(f.question)}</h3><p class="how">{text(f.how)}</p>'
            f'<div{box}><div class="chart" id="chart-{text(f.id)}"></div></div></figure>')


COCO_ROWS = [("AP", "AP @[.50:.95]"), ("AP50", "AP @.50"), ("AP75", "AP @.75"), ("APs", "AP small"),
             ("APm", "AP medium"), ("APl", "AP large"), ("AR1", "AR maxDets 1"), ("AR10", "AR maxDets 10"),
             ("AR100", "AR maxDets 100"), ("ARs", "AR small"), ("ARm", "AR medium"), ("ARl", "AR large")]


def _headline(d: ReportData) -> str:
    h, i = d.headline, d.info
    score = f", score ≥ {d.score:g}" if d.score is not None else ""
    cards = [("mAP", h["mAP"]), ("mAR", h["mAR"]), ("mean F1", h["f1"]), ("precision", h["precision"]),
             ("recall", h["recall"]), ("TP", h["tp"]), ("FP", h["fp"]), ("FN", h["fn"])]
    card_html = "".join(f'<div class="card {text(k.lower())}"><div class="v">{_num(v)}</div>'
                        f'<div class="k">{text(k)}</div></div>' for k, v in cards)
    coco = table(["COCO metric", "value"], [[label, d.coco.get(key)] for key, label in COCO_ROWS], "narrow")
    data = table(["data", ""], [["predictions file", i["source"]], ["images", i["images"]], ["classes", i["classes"]],
                                ["GT objects", i["gt"]], ["crowd regions", i["crowd"]],
                                ["predictions", i["predictions"]]], "narrow")
    return (f'<p class="how">At IoU {d.iou:g}{text(score)}, COCO\'s rules (area "all", 100 detections per image '
            "and class, crowd regions ignored). mAP and mAR are means over classes with GT; precision, recall and "
            f"the counts are pooled over classes.</p><div class=\"cards\">{card_html}</div>"
            f'<div class="row">{coco}{data}</div>')


def _errors_table(d: ReportData) -> str:
    pairs = d.confusion["top_pairs"]
    rows = [[p["actual"], p["predicted"], p["count"]] for p in pairs]
    return ('<h3>The most confused pairs</h3><p class="how">GT class, the class predicted instead (background: a '
            "missed object or a false positive on nothing), and how often, one-to-one at IoU 0.5.</p>"
            + table(["actual (GT)", "predicted", "count"], rows, "narrow"))


def _thresholds(d: ReportData) -> str:
    rows = sorted((r for r in d.per_class if r["gt"] > 0), key=lambda r: r["name"] or "")
    body = table(["class", "GT", f"AP @{d.iou:g}", "AP .50:.95", "best F1", "score threshold for it"],
                 [[r["name"], r["gt"], r["ap"], r["ap_50_95"], r["best_f1"], r["best_f1_threshold"]] for r in rows])
    return ('<h3>Which score threshold should each class be deployed with?</h3><p class="how">The score threshold '
            f"that maximises each class's F1 at IoU {d.iou:g} (predictions scoring at least it are kept), with "
            f'the F1 it gives.</p><div class="scroll">{body}</div>')


def _picture(row: dict[str, Any]) -> list[Any]:
    """The picture cell of a worst-case row, when the workspace knows its images."""
    if "thumb" not in row:
        return []
    if row["thumb"] is None:
        return ["(image unreadable)"]
    return [Html(f'<img class="thumb" src="{text(row["thumb"])}" alt="image {text(row["image_id"])}">')]


def _worst(d: ReportData) -> str:
    from odfail.report.charts import ERROR_COLOURS

    parts = ['<p class="how">The highest-scoring false positives of each error type (tidecv\'s at IoU 0.5) and '
             "the largest objects nobody found: image id and box (x, y, w, h in pixels) to go and look; with the "
             "images, a picture with the GT boxes in white and the prediction in its error type's colour.</p>"]
    what = {"Cls": "right box, wrong class", "Loc": "right class, poor box", "Both": "wrong class and poor box",
            "Dupe": "a second detection of a found object", "Bkg": "nothing there"}
    for t, label in what.items():
        rows = [[*_picture(r), r["image_id"], r["pred_id"], r["class"], r["score"], r["iou"], r["gt_class"],
                 f"{r['x']:.0f}, {r['y']:.0f}, {r['w']:.0f}, {r['h']:.0f}"] for r in d.worst[t]]
        pictures = ["picture"] if d.worst[t] and "thumb" in d.worst[t][0] else []
        parts.append(f'<h3><span class="swatch" style="background:{ERROR_COLOURS[t]}"></span>{text(t)}: '
                     f"{text(label)}</h3>" + (table([*pictures, "image", "prediction", "class", "score", "IoU",
                                                      "GT class", "box"], rows) if rows else "<p>none</p>"))
    rows = [[*_picture(r), r["image_id"], r["gt_id"], r["class"], r["area"],
             f"{r['x']:.0f}, {r['y']:.0f}, {r['w']:.0f}, {r['h']:.0f}"] for r in d.worst["Miss"]]
    pictures = ["picture"] if d.worst["Miss"] and "thumb" in d.worst["Miss"][0] else []
    parts.append(f'<h3><span class="swatch" style="background:{ERROR_COLOURS["Miss"]}"></span>Miss: the largest '
                 "objects nobody found</h3>" + (table([*pictures, "image", "GT", "class", "area (px²)", "box"], rows)
                                                if rows else "<p>none</p>"))
    if d.notes:
        parts.append('<p class="how">Image notes: ' + text("; ".join(d.notes[:5]))
                     + (f" … and {len(d.notes) - 5} more" if len(d.notes) > 5 else "") + "</p>")
    return "".join(parts)


def _compare_tables(d: ReportData) -> str:
    c = d.compare
    rows = [[label, c["coco"][k]["a"], c["coco"][k]["b"], c["coco"][k]["delta"]] for k, label in COCO_ROWS
            if k in c["coco"]]
    rows += [[k, v["a"], v["b"], v["delta"]] for k, v in c["headline"].items()]
    images = table(["image", "GT newly missed", "GT newly found", f"FP {c['a']}", f"FP {c['b']}", "worse by"],
                   [[r["image_id"], r["new_fn"], r["fixed_fn"], r["fp_a"], r["fp_b"], r["worse_by"]]
                    for r in c["images"][:15]])
    return (f'<p class="how">Run {text(c["b"])} against run {text(c["a"])} on the same GT, at IoU {d.iou:g}: '
            f'{c["found_by_a_missed_by_b"]:,} GT objects found by {text(c["a"])} are missed by {text(c["b"])}; '
            f'{c["found_by_b_missed_by_a"]:,} missed by {text(c["a"])} are found by {text(c["b"])} (every one in '
            "the view <code>run_diff</code>).</p>"
            + f'<div class="row">{table(["", c["a"], c["b"], "change"], rows, "narrow")}'
            + f'<div><h3>Images that got most worse</h3>{images}</div></div>')


CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2933;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:6px 0 0;color:#cbd2d9}nav{padding:8px 32px;background:#e4e7eb;position:sticky;top:0;z-index:9}
nav a{margin-right:16px;color:#1f2933;text-decoration:none;font-size:14px}main{padding:8px 32px 48px;max-width:1200px}
section{margin-top:28px}h2{border-bottom:2px solid #1f2933;padding-bottom:4px}h3{margin:22px 0 4px;font-size:17px}
p.how{margin:2px 0 10px;color:#52606d;max-width:900px;font-size:14px;line-height:1.4}
figure{margin:0 0 26px;background:#fff;padding:12px 16px;border:1px solid #e4e7eb;border-radius:6px}
.scroll{max-height:640px;overflow-y:auto}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:6px;padding:10px 16px;min-width:92px}
.card .v{font-size:22px;font-weight:bold}.card .k{color:#52606d;font-size:13px}
.card.tp .v{color:#009E73}.card.fp .v{color:#D55E00}.card.fn .v{color:#0072B2}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table{border-collapse:collapse;font-size:13px;background:#fff;margin:6px 0}
th,td{border:1px solid #e4e7eb;padding:3px 8px;text-align:right}th{background:#f0f2f4}
td:first-child,th:first-child{text-align:left}table.narrow{min-width:260px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px}
.vega-bindings{font-size:14px;margin-top:8px}.vega-bindings label{margin-right:18px}
footer{color:#7b8794;font-size:12px;padding:16px 32px}img.thumb{display:block;max-width:220px;max-height:220px}
"""


def page(d: ReportData, figures: dict[str, list[Figure]], specs: dict[str, dict[str, Any]], generated: str) -> str:
    """The whole page: header, navigation, the sections in the walkthrough's order, the charts' script."""
    from odfail.report.charts import Figure  # noqa: F401  (type of the figures)

    sections = [("headline", "1. Headline", _headline(d)),
                ("errors", "2. Errors", "".join(_figure(f) for f in figures["errors"]) + _errors_table(d)),
                ("classes", "3. Per class", "".join(_figure(f) for f in figures["classes"]) + _thresholds(d)),
                ("quantitative", "4. Quantitative analysis", "".join(_figure(f) for f in figures["quantitative"])),
                ("distribution", "5. Data distribution", "".join(_figure(f) for f in figures["distribution"])),
                ("worst", "6. Worst cases", _worst(d))]
    if d.compare is not None:
        sections.append(("compare", f"7. Compared with run {d.compare['a']}",
                         _compare_tables(d) + "".join(_figure(f) for f in figures["compare"])))
    nav = "".join(f'<a href="#{sid}">{text(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{text(title)}</h2>{content}</section>' for sid, title, content in sections)
    title = f"odfail report — run {d.run}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)}</title><style>{CSS}</style>
<script>{bundle()}</script></head>
<body><header><h1>Why does run {text(d.run)} fail?</h1>
<p>{text(d.info["source"])} · {d.info["images"]:,} images · {d.info["gt"]:,} GT objects · {d.info["predictions"]:,}
predictions · IoU {d.iou:g}{text(f", score ≥ {d.score:g}" if d.score is not None else "")}</p></header>
<nav>{nav}</nav><main>{body}</main>
<footer>Written by odfail on {text(generated)}. COCO numbers equal pycocotools', error types tidecv's.</footer>
<script>
window.odfailSpecs = {script_json(specs)};
window.odfailViews = {{}};
window.odfailRendered = Promise.all(Object.entries(window.odfailSpecs).map(([id, spec]) =>
  vegaEmbed("#chart-" + id, spec, {{actions: false, renderer: "svg"}})
    .then(r => {{ window.odfailViews[id] = r.view; }})));
</script></body></html>
"""
