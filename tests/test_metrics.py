"""Quality metrics, precision and recall by metric, importance, outliers, custom metrics, distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odfail import Workspace, ingest
from odfail.analysis.by_metric import bucket_of, by_metric, edges_of, importance, mutual_information, outliers
from odfail.analysis.distribution import distribution
from odfail.analysis.metrics import metric_tables
from tests.conftest import odfail_cli, shared, write_json
from tests.oracle import pycoco_eval
from tests.test_evaluate_oracle import BBOX_SETS

# Image 1 (100 x 50): GT 1 and 2 of class 1 overlap, GT 3 of class 2 touches the left edge, GT 4 is crowd.
# Image 2 has no size. Predictions (ids 1-3 by file position): 1 on GT 1, 2 a duplicate of 1, 3 of class 2 on GT 3.
HAND_GT = {
    "images": [{"id": 1, "width": 100, "height": 50}, {"id": 2}],
    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 10, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 30, 10, 20], "area": 150, "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 2, "bbox": [60, 0, 40, 50], "area": 2000, "iscrowd": 1},
        {"id": 5, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 0], "area": 0, "iscrowd": 0},
    ]}
HAND_PRED = [
    {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": [12, 10, 20, 10], "score": 0.5},
    {"image_id": 1, "category_id": 2, "bbox": [0, 30, 10, 20], "score": 0.8},
]


@pytest.fixture
def hand_ws(tmp_path):
    ws = tmp_path / "ws"
    ingest(ws, gt=write_json(tmp_path / "gt.json", HAND_GT),
           predictions=[(write_json(tmp_path / "p.json", HAND_PRED), "r")])
    return ws


def _by_id(side: dict, key: str) -> dict[int, dict[str, float]]:
    return {int(i): {k: (None if isinstance(v[n], float) and np.isnan(v[n]) else v[n]) for k, v in side.items()}
            for n, i in enumerate(side[key])}


def test_metric_values_of_a_hand_made_workspace(hand_ws):
    """Each built-in metric, computed by hand from the boxes above."""
    t = metric_tables(hand_ws, "r")
    g, p = _by_id(t.gt, "gt_id"), _by_id(t.predictions, "pred_id")
    # GT 1 [10,30]x[10,20] and GT 2 [20,40]x[10,20]: intersection 10x10 = 100, union 300
    assert g[1]["duplicate_iou"] == pytest.approx(1 / 3) and g[2]["duplicate_iou"] == pytest.approx(1 / 3)
    assert g[3]["duplicate_iou"] == 0  # crowd GT 4 is of class 2 but does not overlap it
    assert g[1]["crowding_iou"] == pytest.approx(1 / 3) and g[3]["crowding_iou"] == 0
    assert (g[1]["width"], g[1]["height"], g[1]["area"], g[1]["aspect_ratio"]) == (20, 10, 200, 2)
    assert g[1]["relative_area"] == pytest.approx(200 / 5000)
    # distance to the nearest edge: GT 1: min(10, 10, 100 - 30, 50 - 20) = 10; half the shorter side 25
    assert g[1]["border_closeness"] == pytest.approx(1 - 10 / 25) and g[3]["border_closeness"] == 1
    assert g[5]["aspect_ratio"] is None and g[5]["relative_area"] is None and g[5]["border_closeness"] is None
    # best IoU with a prediction of its class: GT 1 is predicted exactly; GT 2 overlaps pred 2 [12,32]: 12/28
    assert g[1]["best_iou"] == 1 and g[2]["best_iou"] == pytest.approx(120 / 280)
    # pred 2 with pred 1: intersection 18x10 = 180, union 220
    assert p[1]["duplicate_iou"] == pytest.approx(180 / 220) and p[3]["duplicate_iou"] == 0
    # pred 1 is on GT 1 (IoU 1); second-best GT of any class is GT 2 (1/3); crowd GT 4 never counts
    assert p[1]["crowding_iou"] == pytest.approx(1 / 3) and p[1]["best_iou"] == 1
    assert p[2]["crowding_iou"] == pytest.approx(120 / 280)  # GT 1 160/240 first, GT 2 120/280 second
    assert p[1]["confidence"] == 0.9
    # image 1: 3 regular GT; union of [10,40]x[10,20] (300) and [0,10]x[30,50] (200) = 500 of 5000
    i = _by_id(t.images, "image_id")
    assert i[1]["objects_in_image"] == 3 and i[1]["density"] == pytest.approx(0.1)
    assert i[2]["objects_in_image"] == 1 and i[2]["density"] is None
    assert g[1]["objects_in_image"] == 3 and p[3]["density"] == pytest.approx(0.1)


def test_density_is_the_exact_union_of_overlapping_boxes_clipped_to_the_image():
    from odfail.analysis._kernels import covered_area

    # three boxes: A [0,4]x[0,4], B [2,6]x[2,6] (overlap 2x2), C [5,12]x[0,1] sticking out of a 10-wide image
    x, y = np.array([0.0, 2, 5]), np.array([0.0, 2, 0])
    w, h = np.array([4.0, 4, 7]), np.array([4.0, 4, 1])
    img = np.zeros(3, np.int64)
    # A + B = 16 + 16 - 4 = 28; C clipped to [5,10]x[0,1] = 5, overlapping B? B spans y [2,6]: no. 28 + 5 = 33
    assert covered_area(x, y, w, h, img, np.array([10.0]), np.array([10.0]), 1)[0] == 33
    assert covered_area(x, y, w, h, img, np.array([-1.0]), np.array([-1.0]), 1)[0] == 35  # unknown size: unclipped


def test_bucketing_rules():
    v = np.array([0.0, 1, 2, 3, 10])
    edges = edges_of(v, 5, "equal-width")
    np.testing.assert_array_equal(edges, [0, 2, 4, 6, 8, 10])
    # floor((v - 0) / 10 * 5); the maximum in the last bucket
    assert bucket_of(v, edges, "equal-width").tolist() == [0, 0, 1, 1, 4]
    assert edges_of(np.array([3.0, 3.0]), 5, "equal-width").tolist() == [3, 3]  # constant: one bucket
    assert bucket_of(np.array([3.0, 3.0]), np.array([3.0, 3.0]), "equal-width").tolist() == [0, 0]
    q = np.array([1.0, 1, 1, 1, 2, 3, 4, 5])
    # quartiles at positions p * (8 - 1): 1, 1, 1.5 (3.5: between 1 and 2), 3.25 (5.25: between 3 and 4), 5;
    # the two equal edges merge
    edges = edges_of(q, 4, "quantile")
    np.testing.assert_array_equal(edges, [1, 1.5, 3.25, 5])
    # a value on an inner edge goes to the bucket above
    assert bucket_of(np.array([1.0, 1.5, 2, 3.5, 5]), edges, "quantile").tolist() == [0, 1, 1, 2, 2]


def _eval_objects(E, folder, gt, dt, t):
    """Per object with an outcome, from pycocotools' evalImgs at area "all", maxDets 100: predictions (id, TP)
    and GT (id, found)."""
    preds, gts = [], []
    for e in E.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        ig = e["dtIgnore"][t].astype(bool)
        for i, d in enumerate(e["dtIds"]):
            if not ig[i]:
                preds.append((d, e["dtMatches"][t][i] != 0))
        for j, g in enumerate(e["gtIds"]):
            if not e["gtIgnore"][j]:
                gts.append((g, e["gtMatches"][t][j] != 0))
    return preds, gts


METRIC_OF = {  # the metric from pycocotools' own objects: (GT annotation, loadRes detection)
    "height": (lambda a: a["bbox"][3], lambda d: d["bbox"][3]),
    "width": (lambda a: a["bbox"][2], lambda d: d["bbox"][2]),
    "area": (lambda a: a["area"], lambda d: d["area"]),
    "aspect_ratio": (lambda a: a["bbox"][2] / a["bbox"][3] if a["bbox"][3] else None,
                     lambda d: d["bbox"][2] / d["bbox"][3] if d["bbox"][3] else None),
    "confidence": (None, lambda d: d["score"]),
}


@pytest.mark.parametrize("folder,gt,dt", [s[:3] for s in BBOX_SETS], ids=[s[0] for s in BBOX_SETS])
def test_by_metric_counts_equal_those_from_pycocotools_eval_imgs(tmp_path, folder, gt, dt):
    ws = tmp_path / "ws"
    ingest(ws, gt=shared(folder, gt), predictions=[(shared(folder, dt), "r")])
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)), summarize=False)
    for t, iou in ((0, 0.5), (5, 0.75)):
        preds, gts = _eval_objects(E, folder, gt, dt, t)
        for metric, (g_of, d_of) in METRIC_OF.items():
            for bucketing in ("equal-width", "quantile"):
                got = by_metric(ws, "r", metric, 7, bucketing, iou)
                pv = [(d_of(E.cocoDt.anns[d]), tp) for d, tp in preds]
                gv = [] if g_of is None else [(g_of(E.cocoGt.anns[g]), f) for g, f in gv_src(gts)]
                pooled = np.array([v for v, _ in pv + gv if v is not None])
                edges = edges_of(pooled, 7, bucketing)
                assert [b["lo"] for b in got.buckets] == edges[:-1].tolist(), (metric, bucketing)
                n = len(edges) - 1
                for side, values, keys in (("p", pv, ("tp", "fp")), ("g", gv, ("found", "fn"))):
                    if side == "g" and g_of is None:
                        assert all(b["gt"] is None for b in got.buckets)
                        continue
                    vals = np.array([v for v, _ in values if v is not None])
                    hit = np.array([h for v, h in values if v is not None], dtype=bool)
                    b = bucket_of(vals, edges, bucketing)
                    want_hit = np.bincount(b[hit], minlength=n)
                    want_miss = np.bincount(b[~hit], minlength=n)
                    assert [r[keys[0]] for r in got.buckets] == want_hit.tolist(), (metric, side, iou)
                    assert [r[keys[1]] for r in got.buckets] == want_miss.tolist(), (metric, side, iou)


def gv_src(gts):
    return gts


def test_iqr_fences_by_hand(hand_ws):
    """Widths of the 5 GT: 20, 20, 10, 40, 10 -> Q1 10, Q3 20 (linear), IQR 10; moderate fences [-5, 35], severe
    [-15, 45]: the crowd GT's 40 is a moderate outlier."""
    r = outliers(hand_ws, "r", "width")
    g = next(s for s in r.sides if s["side"] == "gt")
    assert (g["q1"], g["q3"], g["iqr"]) == (10, 20, 10)
    assert g["moderate"] == [-5, 35] and g["severe"] == [-15, 45]
    assert (g["n_moderate"], g["n_severe"]) == (1, 0)
    assert g["objects"] == [{"id": 4, "image_id": 1, "category_id": 2, "value": 40.0, "severity": "moderate"}]


def test_outcome_counts_and_nulls_of_a_hand_made_run(hand_ws):
    """At IoU 0.5: pred 1 TP (GT 1), pred 2 FP (its best GT 1 is taken; GT 2 at 120/280 < .5), pred 3 TP
    (GT 3); GT 1 and 3 found, GT 2 and GT 5 missed; crowd GT 4 has no outcome. aspect_ratio of GT 5 (height 0) is
    null, counted apart."""
    r = by_metric(hand_ws, "r", "aspect_ratio", buckets=1)
    b = r.buckets[0]
    assert (b["tp"], b["fp"], b["found"], b["fn"]) == (2, 1, 2, 1)
    assert r.null == {"predictions": {"tp": 0, "fp": 0}, "gt": {"found": 0, "fn": 1}}
    m = by_metric(hand_ws, "r", "missing_objects", buckets=1).buckets[0]  # image metrics attach to objects
    assert (m["predictions"], m["gt"]) == (3, 4)


def test_importance_equals_scikit_learn_on_continuous_metrics(tmp_path):
    """Mutual information within 0.01 nats of scikit-learn's mutual_info_classif (k = 3) and the same ranking, on
    the continuous metrics of a generated run (predictions: TP against FP)."""
    from sklearn.feature_selection import mutual_info_classif

    from odfail.synth import generate

    generate(tmp_path / "data", images=150, seed=4)
    ws = tmp_path / "ws"
    ingest(ws, gt=tmp_path / "data" / "gt.json", predictions=[(tmp_path / "data" / "predictions.json", "r")])
    ours = {(r["metric"], r["side"]): r for r in importance(ws, "r").rows}
    from odfail.analysis.by_metric import Context
    from odfail.analysis.metrics import find

    ctx = Context(Workspace(ws), "r", 0.5, None)
    continuous = ["confidence", "best_iou", "crowding_iou", "relative_area", "border_closeness"]
    theirs = {}
    for name in continuous:
        j = ctx.join(find(ctx.ws, name))
        ok = ~np.isnan(j.pred["value"])
        theirs[name] = mutual_info_classif(j.pred["value"][ok, None], j.pred["tp"][ok], random_state=0)[0]
        assert ours[(name, "predictions")]["mi"] == pytest.approx(theirs[name], abs=0.01), name
    assert sorted(continuous, key=lambda n: -ours[(n, "predictions")]["mi"]) == sorted(continuous,
                                                                                       key=lambda n: -theirs[n])


def test_spearman_of_importance_equals_scipys_with_heavy_ties():
    """A metric that is 0 for most objects (best_iou of background false positives) with tiny positive values
    among them: the ranks are the average ranks of the values themselves, not of their tie-broken order."""
    from scipy.stats import pearsonr, spearmanr

    from odfail.analysis.by_metric import _importance_row

    rng = np.random.default_rng(2)
    x = np.where(rng.random(20000) < 0.7, 0.0, rng.random(20000) ** 8)
    y = rng.random(20000) < 0.2 + 0.5 * x
    row = _importance_row("m", "predictions", x, y)
    assert row["spearman"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert row["pearson"] == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)


def test_mutual_information_of_random_data_equals_scikit_learn():
    from sklearn.feature_selection import mutual_info_classif

    rng = np.random.default_rng(1)
    for shift in (0.0, 0.5, 2.0):
        y = rng.random(2000) < 0.4
        x = rng.normal(size=2000) + shift * y
        assert mutual_information(x, y) == pytest.approx(
            mutual_info_classif(x[:, None], y, random_state=0)[0], abs=1e-6)
    # many ties (a count): broken by the same seeded noise
    y = rng.random(3000) < 0.3
    x = rng.integers(0, 6, 3000) + y
    assert mutual_information(x, y) == pytest.approx(mutual_info_classif(
        x[:, None].astype(float), y, random_state=0)[0], abs=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--on", "gt", "--sql", "nosuch + 1"], "error: --sql 'nosuch + 1': Binder Error"),
    (["--on", "images", "--sql", "file_name"], "error: --sql 'file_name': gives VARCHAR, not a number"),
    (["--on", "gt", "--sql", "1; drop table gt"], "error: --sql '1; drop table gt': one expression, not statements"),
    (["--on", "gt", "--sql", "delete from gt"], "error: --sql 'delete from gt': Parser Error"),
    (["--on", "gt", "--sql", "(w +"], "error: --sql '(w +': Parser Error"),
    (["--on", "boxes", "--sql", "w"], "error: --on boxes: expected gt, predictions or images"),
], ids=["unknown-column", "not-numeric", "statements", "a-statement", "syntax", "bad-side"])
def test_bad_custom_metric_exits_2_and_leaves_the_workspace_as_it_was(hand_ws, args, message):
    before = {p.name: p.stat().st_mtime_ns for p in hand_ws.rglob("*") if p.is_file()}
    res = odfail_cli("metric", "add", "-w", hand_ws, "m", *args)
    assert res.returncode == 2 and res.stderr.startswith(message), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in hand_ws.rglob("*") if p.is_file()} == before


def test_custom_metrics_work_everywhere_a_builtin_does(hand_ws):
    assert odfail_cli("metric", "add", "-w", hand_ws, "box_k", "--on", "gt", "--sql", "w * h / 100").returncode == 0
    assert odfail_cli("metric", "add", "-w", hand_ws, "wide", "--on", "images",
                      "--sql", "coalesce(width, 0) / 100").returncode == 0
    res = odfail_cli("metric", "add", "-w", hand_ws, "box_k", "--on", "gt", "--sql", "1")
    assert res.returncode == 2 and "exists already" in res.stderr
    doc = json.loads(odfail_cli("analyze", "-w", hand_ws, "--run", "r", "by-metric", "box_k", "--buckets", "2",
                                "-f", "json").stdout)
    # GT box areas / 100: 2, 2, 1.5, (crowd 20: no outcome), 0 -> [0, 1) and [1, 2]: GT 5 (missed) | GT 1, 2, 3
    assert [(b["gt"], b["found"]) for b in doc["buckets"]] == [(1, 0), (3, 2)]
    assert all(b["predictions"] is None for b in doc["buckets"])
    wide = by_metric(hand_ws, "r", "wide", buckets=2)  # an image metric on both sides: image 1 is 1, image 2 is 0
    assert [(b["predictions"], b["gt"]) for b in wide.buckets] == [(0, 1), (3, 3)]
    names = {(r["metric"], r["side"]) for r in importance(hand_ws, "r").rows}
    assert {("box_k", "gt"), ("wide", "predictions"), ("wide", "gt")} <= names
    assert outliers(hand_ws, "r", "box_k").sides[0]["n"] == 5
    sql = Workspace(hand_ws).sql("select gt_id, box_k from gt_metrics order by gt_id")
    assert sql["box_k"].to_list() == [2.0, 2.0, 2.0, 20.0, 0.0]
    assert odfail_cli("metric", "remove", "-w", hand_ws, "box_k").returncode == 0
    res = odfail_cli("analyze", "-w", hand_ws, "--run", "r", "by-metric", "box_k")
    assert res.returncode == 2 and res.stderr.startswith("error: no metric 'box_k'")


def test_distribution_tables_of_a_hand_made_workspace(hand_ws):
    d = distribution(hand_ws, "r", score=0.6).tables
    freq = {r["category_id"]: r for r in d["class_frequency"].to_dicts()}
    assert (freq[1]["gt"], freq[1]["predictions"], freq[1]["predictions_above_score"]) == (3, 2, 1)
    assert (freq[2]["gt"], freq[2]["predictions"]) == (1, 1)  # crowd GT 4 not counted
    assert d["objects_per_image"].rows() == [(1, 1), (3, 1)]
    assert d["co_occurrence"].rows() == [(1, "a", 2, "b", 1)]
    sizes = {(r["side"], r["category_id"]): (r["small"], r["medium"], r["large"]) for r in d["sizes"].to_dicts()}
    assert sizes[("gt", 1)] == (3, 0, 0) and sizes[("predictions", 2)] == (1, 0, 0)
    assert d["image_sizes"].height == 2
