"""COCO-exact evaluation: equal to pycocotools on every bbox set of ../shared/data and on random cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odfail import Workspace, ingest
from odfail.evaluate.coco import DEFAULT_AREAS, Params, evaluate
from tests.conftest import shared, write_json
from tests.oracle import assert_arrays_equal, pycoco_eval

STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
BBOX_SETS = [  # (folder, gt, dt, name of the evaluation in expected.json, key of the full-precision stats)
    ("cocoapi-val2014-100", "instances_val2014_100.json", "instances_val2014_fakebbox100_results.json", "bbox",
     "stats"),
    ("padilla-val2014-100-nocrowd", "sampled_gts_bbox_area.json", "detections_list.json", "bbox",
     "pycocotools_2_0_11_stats"),
    ("torchmetrics-4img", "gt.json", "dt.json", "bbox", "pycocotools_2_0_11_stats"),
    ("fce-val2017-2299-crowd", "gt_ignore_test_intids.json", "dt_ignore_test.json", "bbox", "stats"),
    ("fce-shapes-segm", "gt_dataset.json", "dt_dataset.json", "bbox_raw_dt (NOT published; pycocotools 2.0.11)",
     "stats"),
    ("detectron2-val2017-mini", "gt.json", "dt.json", "bbox", "stats"),
]


def _expected(folder: str, name: str) -> dict:
    doc = json.loads(shared(folder, "expected.json").read_text())
    return next(e for e in doc["evaluations"] if e["name"] == name)


def _run(tmp_path, gt, dt, params=None):
    ingest(tmp_path / "ws", gt=gt, predictions=[(dt, "r")])
    return evaluate(tmp_path / "ws", "r", params)


@pytest.mark.parametrize("folder,gt,dt,name,key", BBOX_SETS, ids=[s[0] for s in BBOX_SETS])
def test_real_sets_equal_pycocotools_and_published_numbers(tmp_path, folder, gt, dt, name, key):
    """The 12 numbers equal pycocotools (|d| <= 1e-12) and the reference in expected.json; arrays element-wise."""
    ours = _run(tmp_path, shared(folder, gt), shared(folder, dt))
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)))
    got = np.array([ours.stats[k] for k in STATS])
    np.testing.assert_allclose(got, E.stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, _expected(folder, name)[key], rtol=0, atol=1e-12)
    assert_arrays_equal(ours, E)


def test_published_six_decimal_figures_of_padilla(tmp_path):
    """rafaelpadilla / globox publish these to 6 dp: the nocrowd GT whose area field is w*h."""
    folder = "padilla-val2014-100-nocrowd"
    ours = _run(tmp_path, shared(folder, "sampled_gts_bbox_area.json"), shared(folder, "detections_list.json"))
    np.testing.assert_allclose([ours.stats[k] for k in STATS], _expected(folder, "bbox")["published_stats_6dp"],
                               atol=5e-7)


def test_torchmetrics_per_class_ap_and_ar(tmp_path):
    """Per-class AP and AR100 as torchmetrics publishes them; category 3 has a prediction but no GT -> -1."""
    folder = "torchmetrics-4img"
    ours = _run(tmp_path, shared(folder, "gt.json"), shared(folder, "dt.json"))
    exp = _expected(folder, "bbox")
    df = ours.to_polars()
    ap = dict(zip(df["category_id"].to_list(), df["ap"].to_list()))
    for cat, value in exp["pycocotools_2_0_11_per_class_AP"].items():
        assert ap[int(cat)] == pytest.approx(value, abs=1e-12)
    ar = ours.recall[:, :, 0, -1]  # (T, K) at area all, maxDets 100
    for k, cat in enumerate(ours.cat_ids):
        col = ar[:, k]
        got = col[col > -1].mean() if (col > -1).any() else -1.0
        assert got == pytest.approx(exp["pycocotools_2_0_11_per_class_AR100"][str(cat)], abs=1e-12)


def test_custom_area_ranges_nano_micro(tmp_path):
    """faster_coco_eval's nano/micro/small/medium/large ranges on the cocoapi set, via the CLI's parser too."""
    from odfail.cli.evaluate import _area_ranges

    folder = "cocoapi-val2014-100"
    exp = _expected(folder, "bbox_custom_ranges")
    ranges = dict(zip(exp["params"]["areaRngLbl"], map(tuple, exp["params"]["areaRng"])))
    assert _area_ranges(["nano=0:64", "micro=64:256", "small=256:1024", "medium=1024:9216",
                         "large=9216:1e10"]) == {**ranges, "all": (0.0, 1e10)}
    params = Params(area_ranges=ranges)
    ours = _run(tmp_path, shared(folder, "instances_val2014_100.json"),
                shared(folder, "instances_val2014_fakebbox100_results.json"), params)
    got = [ours.stats[k] for k in ("AP", "AP50", "AP75", "AP_nano", "AP_micro", "APs", "APm", "APl", "AR1",
                                   "AR10", "AR100", "AR_nano", "AR_micro", "ARs", "ARm", "ARl")]
    np.testing.assert_allclose(got, exp["stats"], rtol=0, atol=1e-12)
    E = pycoco_eval(str(shared(folder, "instances_val2014_100.json")),
                    str(shared(folder, "instances_val2014_fakebbox100_results.json")), area_ranges=ranges,
                    summarize=False)
    assert_arrays_equal(ours, E)


def test_crowd_iou_matrix_of_image_2299(tmp_path):
    """2299_1.npy is pycocotools' IoU matrix (dets with score >= .1 by score, GT in file order, crowd last):
    our per-prediction best IoUs with regular and with crowd GT must be its row maxima."""
    folder = "fce-val2017-2299-crowd"
    ingest(tmp_path / "ws", gt=shared(folder, "gt_ignore_test_intids.json"),
           predictions=[(shared(folder, "dt_ignore_test.json"), "r")])
    evaluate(tmp_path / "ws", "r")
    ious = np.load(shared(folder, "2299_1.npy"))
    gt = json.loads(shared(folder, "gt_ignore_test_intids.json").read_text())["annotations"]
    crowd = np.array([bool(a["iscrowd"]) for a in gt])
    df = Workspace(tmp_path / "ws").sql("""select iou_same, iou_crowd from matches where score >= 0.1
                                           order by score desc, pred_id""")
    assert len(df) == ious.shape[0] == 36
    np.testing.assert_array_equal(df["iou_same"].to_numpy(), ious[:, ~crowd].max(axis=1))
    np.testing.assert_array_equal(df["iou_crowd"].to_numpy(), ious[:, crowd].max(axis=1))


def test_ar_at_iou_50_and_75_published_for_2299(tmp_path):
    folder = "fce-val2017-2299-crowd"
    exp = _expected(folder, "bbox")["extra_published"]
    ours = _run(tmp_path, shared(folder, "gt_ignore_test_intids.json"), shared(folder, "dt_ignore_test.json"))
    assert ours.recall[0, :, 0, -1].max() == exp["AR_50"]
    assert ours.recall[5, :, 0, -1].max() == exp["AR_75"]


# ---------- random cases against pycocotools ----------

@st.composite
def coco_case(draw):
    """A small random GT + results pair covering COCO's corner cases: crowd, equal scores, zero-area and
    degenerate boxes, images without GT or predictions, classes with predictions but no GT, many predictions per
    image, GT id 0, boxes on a coarse grid so that IoU ties happen."""
    n_img = draw(st.integers(1, 4))
    n_cat = draw(st.integers(1, 3))
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(n_cat)]
    extra_cat = draw(st.booleans())  # a category that only predictions use
    if extra_cat:
        cats.append({"id": 99, "name": "no-gt"})
    images = [{"id": 10 + i, "width": 64, "height": 64} for i in range(n_img)]
    coord = st.integers(0, 12).map(lambda v: v * 4.0)
    size = st.sampled_from([0.0, 2.0, 4.0, 8.0, 16.0, 24.0, 40.0, 64.0])
    first_id = draw(st.sampled_from([0, 1, 1000]))
    anns = []
    for i in range(draw(st.integers(0, 10))):
        anns.append({"id": first_id + i, "image_id": 10 + draw(st.integers(0, n_img - 1)),
                     "category_id": draw(st.integers(1, n_cat)),
                     "bbox": [draw(coord), draw(coord), draw(size), draw(size)],
                     "iscrowd": int(draw(st.integers(0, 9)) == 0)})
        b = anns[-1]["bbox"]
        anns[-1]["area"] = draw(st.sampled_from([b[2] * b[3], b[2] * b[3] * 0.7 + 1]))
    scores = st.sampled_from([0.1, 0.5, 0.5, 0.9, 0.3]) | st.floats(0, 1, allow_nan=False)
    n_dt = draw(st.sampled_from([0, 3, 12, 30, 130]))
    dts = []
    for _ in range(n_dt):
        cat = draw(st.integers(1, n_cat)) if not extra_cat or draw(st.integers(0, 5)) else 99
        dts.append({"image_id": 10 + draw(st.integers(0, n_img - 1)), "category_id": cat,
                    "bbox": [draw(coord), draw(coord), draw(size), draw(size)], "score": draw(scores)})
    return {"images": images, "categories": cats, "annotations": anns}, dts


def _compare_random(tmp_path, gt, dts, params: Params, pyco_kwargs: dict, stats=True):
    if not dts:
        dts = []
    d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    ingest(d / "ws", gt=write_json(d / "gt.json", gt), predictions=[(write_json(d / "dt.json", dts), "r")])
    ours = evaluate(d / "ws", "r", params)
    if not dts:  # pycocotools' loadRes cannot take an empty list (it reads anns[0])
        assert (ours.precision <= 0).all()
        return
    E = pycoco_eval(gt, dts, summarize=stats, **pyco_kwargs)
    assert_arrays_equal(ours, E)
    if stats:
        np.testing.assert_allclose([ours.stats[k] for k in STATS], E.stats, rtol=0, atol=1e-12)


_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@_SETTINGS
@given(case=coco_case())
def test_random_cases_equal_pycocotools(tmp_path, case):
    gt, dts = case
    _compare_random(tmp_path, gt, dts, Params(), {})


@_SETTINGS
@given(case=coco_case())
def test_random_class_agnostic_equal_pycocotools(tmp_path, case):
    gt, dts = case
    _compare_random(tmp_path, gt, dts, Params(use_cats=False), {"use_cats": False})


@_SETTINGS
@given(case=coco_case(), max_dets=st.sampled_from([(1, 5, 20), (2, 7), (3,), (1, 10, 100, 300)]))
def test_random_custom_max_dets_equal_pycocotools(tmp_path, case, max_dets):
    """pycocotools' summary needs three maxDets and hard-codes 100, so compare the arrays (the documented
    difference is in the summary only)."""
    gt, dts = case
    _compare_random(tmp_path, gt, dts, Params(max_dets=max_dets), {"max_dets": max_dets}, stats=False)


@_SETTINGS
@given(case=coco_case())
def test_random_custom_area_ranges_equal_pycocotools(tmp_path, case):
    gt, dts = case
    ranges = {"all": (0.0, 1e10), "tiny": (0.0, 16.0), "mid": (16.0, 256.0), "big": (256.0, 1e10)}
    _compare_random(tmp_path, gt, dts, Params(area_ranges=ranges), {"area_ranges": ranges}, stats=False)


@_SETTINGS
@given(case=coco_case(), data=st.data())
def test_random_image_and_category_subsets_equal_pycocotools(tmp_path, case, data):
    """Subsets leave gaps in the stored class_rank order and in the groups; results must not change."""
    gt, dts = case
    imgs = [i["id"] for i in gt["images"]]
    cats = [c["id"] for c in gt["categories"]]
    img_ids = tuple(data.draw(st.lists(st.sampled_from(imgs), min_size=1, unique=True)))
    cat_ids = tuple(data.draw(st.lists(st.sampled_from(cats), min_size=1, unique=True)))
    _compare_random(tmp_path, gt, dts, Params(img_ids=img_ids, cat_ids=cat_ids),
                    {"img_ids": sorted(img_ids), "cat_ids": sorted(cat_ids)})


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=coco_case(), agnostic=st.booleans())
def test_many_random_cases_equal_pycocotools(tmp_path, case, agnostic):
    gt, dts = case
    _compare_random(tmp_path, gt, dts, Params(use_cats=not agnostic), {"use_cats": not agnostic})


def test_default_area_ranges_are_pycocotools_floats():
    from pycocotools.cocoeval import Params as PP

    p = PP(iouType="bbox")
    assert [list(v) for v in DEFAULT_AREAS.values()] == p.areaRng
    from odfail.evaluate.coco import IOU_THRS, REC_THRS

    np.testing.assert_array_equal(IOU_THRS, p.iouThrs)
    np.testing.assert_array_equal(REC_THRS, p.recThrs)


@_SETTINGS
@given(case=coco_case(), shift=st.sampled_from([10**12, -(10**6)]))
def test_random_cases_with_huge_or_negative_ids_equal_pycocotools(tmp_path, case, shift):
    """Ids beyond the dense lookup table (huge or negative) take the binary-search path; results must agree."""
    gt, dts = case
    gt = {**gt, "images": [{**i, "id": i["id"] + shift} for i in gt["images"]],
          "categories": [{**c, "id": c["id"] - 7} for c in gt["categories"]],
          "annotations": [{**a, "image_id": a["image_id"] + shift, "category_id": a["category_id"] - 7}
                          for a in gt["annotations"]]}
    dts = [{**d, "image_id": d["image_id"] + shift, "category_id": d["category_id"] - 7} for d in dts]
    _compare_random(tmp_path, gt, dts, Params(), {})


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.1, 0.5, 0.9]), st.integers(0, 5)),
                     max_size=12))
def test_eval_order_check_agrees_with_a_sort(rows):
    """Evaluation skips sorting when rows already are in (key, score descending, tie strictly ascending)
    order; the one-pass check must say so exactly when sorting would change nothing and ties are distinct."""
    from odfail.match._kernels import in_eval_order

    key = np.array([r[0] for r in rows], dtype=np.int64)
    score = np.array([r[1] for r in rows], dtype=np.float64)
    tie = np.array([r[2] for r in rows], dtype=np.int64)
    triples = list(zip(key.tolist(), (-score).tolist(), tie.tolist()))
    expected = triples == sorted(triples) and len(set(triples)) == len(triples)
    assert in_eval_order(key, score, tie) == expected
    order = np.lexsort((tie, -score, key))  # and a sorted copy of the same rows
    distinct = len(set(triples)) == len(triples)
    assert in_eval_order(key[order], score[order], tie[order]) == distinct
