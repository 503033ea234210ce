"""Masks: the RLE codec and polygon rasterisation equal pycocotools.mask bit for bit, and segm evaluation equals
pycocotools COCOeval(iouType='segm') on every mask set of ../shared/data and on random cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as M

from odfail import ingest
from odfail.evaluate.coco import Params, evaluate
from odfail.match import masks as O
from tests.conftest import shared, write_json
from tests.oracle import assert_arrays_equal, pycoco_eval
from tests.test_evaluate_oracle import STATS, _expected

RNG_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RNG_SETTINGS
@given(h=st.integers(1, 30), w=st.integers(1, 30), density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_encode_decode_area_bbox_equal_pycocotools(h, w, density, seed):
    m = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    ref = M.encode(np.asfortranarray(m))
    ours = O.encode(m)
    assert ours["counts"] == ref["counts"] and ours["size"] == ref["size"]
    assert (O.decode(ref) == m).all()
    assert O.area(ref) == M.area(ref)
    np.testing.assert_array_equal(O.to_bbox(ref), M.toBbox(ref))


def polygon(draw, h, w):
    k = draw(st.integers(3, 8))
    coords = draw(st.lists(st.floats(-5, max(h, w) + 5, allow_nan=False), min_size=2 * k, max_size=2 * k))
    if draw(st.booleans()):
        coords = [float(round(c)) for c in coords]  # on the pixel grid: ties in the rasteriser's rounding
    if draw(st.booleans()):
        coords[2:4] = coords[0:2]  # a repeated vertex: a zero-length edge (0 / 0 in maskApi.c)
    return coords


@st.composite
def polygons(draw):
    h, w = draw(st.integers(1, 50)), draw(st.integers(1, 50))
    return h, w, [polygon(draw, h, w) for _ in range(draw(st.integers(1, 3)))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=polygons())
def test_polygon_rasterisation_equals_pycocotools(case):
    """frPyObjects + merge: the same pixels, hence the same areas (which decide small/medium/large)."""
    h, w, polys = case
    ref = M.merge(M.frPyObjects(polys, h, w))
    assert O.from_polygons(polys, h, w)["counts"] == ref["counts"]


SEGM_SETS = [  # (folder, gt, dt, name of the evaluation in expected.json)
    ("cocoapi-val2014-100", "instances_val2014_100.json", "instances_val2014_fakesegm100_results.json", "segm"),
    ("fce-shapes-segm", "gt_dataset.json", "dt_dataset_rle_nobbox.json", "segm_rle_nobbox"),
    ("fce-shapes-segm", "gt_dataset.json", "dt_dataset.json", "segm_raw_dt (NOT published; pycocotools 2.0.11)"),
    ("detectron2-val2017-mini", "gt.json", "dt.json", "segm"),
]


@pytest.mark.parametrize("folder,gt,dt,name", SEGM_SETS, ids=[f"{s[0]}:{s[2]}" for s in SEGM_SETS])
def test_segm_sets_equal_pycocotools_and_published_numbers(tmp_path, folder, gt, dt, name):
    """The 12 numbers equal pycocotools and expected.json (|d| <= 1e-12); precision/recall arrays element-wise.
    fce-shapes-segm twice: its results with a bbox keep the box area (APm 0.792), without one the mask area
    (APm 0.737), as loadRes does."""
    ingest(tmp_path / "ws", gt=shared(folder, gt), predictions=[(shared(folder, dt), "r")])
    ours = evaluate(tmp_path / "ws", "r", iou_type="segm")
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)), iou_type="segm")
    got = [ours.stats[k] for k in STATS]
    np.testing.assert_allclose(got, E.stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, _expected(folder, name)["stats"], rtol=0, atol=1e-12)
    assert_arrays_equal(ours, E)


def test_segm_custom_area_ranges_nano_micro(tmp_path):
    folder = "cocoapi-val2014-100"
    exp = _expected(folder, "bbox_custom_ranges")
    ranges = dict(zip(exp["params"]["areaRngLbl"], map(tuple, exp["params"]["areaRng"])))
    gt, dt = shared(folder, "instances_val2014_100.json"), shared(folder, "instances_val2014_fakesegm100_results.json")
    ingest(tmp_path / "ws", gt=gt, predictions=[(dt, "r")])
    ours = evaluate(tmp_path / "ws", "r", Params(area_ranges=ranges), iou_type="segm")
    got = [ours.stats[k] for k in ("AP", "AP50", "AP75", "AP_nano", "AP_micro", "APs", "APm", "APl", "AR1",
                                   "AR10", "AR100", "AR_nano", "AR_micro", "ARs", "ARm", "ARl")]
    np.testing.assert_allclose(got, _expected(folder, "segm_custom_ranges")["stats"], rtol=0, atol=1e-12)
    assert_arrays_equal(ours, pycoco_eval(str(gt), str(dt), area_ranges=ranges, summarize=False, iou_type="segm"))


def test_stored_masks_decode_what_class_agnostic_matching_compares(tmp_path):
    """From stored masks only the masks whose box overlaps a GT they are compared with are decoded: of their
    class normally, of any class when class-agnostic (useCats=0). Both equal pycocotools."""
    folder = "cocoapi-val2014-100"
    gt, dt = shared(folder, "instances_val2014_100.json"), shared(folder, "instances_val2014_fakesegm100_results.json")
    ingest(tmp_path / "ws", gt=gt, predictions=[(dt, "r")])
    evaluate(tmp_path / "ws", "r", iou_type="segm")  # decodes every mask and stores them
    assert_arrays_equal(evaluate(tmp_path / "ws", "r", Params(use_cats=False), iou_type="segm"),
                        pycoco_eval(str(gt), str(dt), use_cats=False, summarize=False, iou_type="segm"))
    assert_arrays_equal(evaluate(tmp_path / "ws", "r", iou_type="segm"),
                        pycoco_eval(str(gt), str(dt), summarize=False, iou_type="segm"))


def test_mask_only_results_evaluate_as_boxes_like_load_res(tmp_path):
    """A result with only a mask gets the mask's box and area (loadRes: toBbox, area) for bbox evaluation."""
    folder = "detectron2-val2017-mini"
    dets = json.loads(shared(folder, "dt.json").read_text())
    for d in dets:
        d.pop("bbox", None)
    dt = write_json(tmp_path / "dt.json", dets)
    ingest(tmp_path / "ws", gt=shared(folder, "gt.json"), predictions=[(dt, "r")])
    ours = evaluate(tmp_path / "ws", "r")
    E = pycoco_eval(str(shared(folder, "gt.json")), str(dt))
    np.testing.assert_allclose([ours.stats[k] for k in STATS], E.stats, rtol=0, atol=1e-12)
    assert_arrays_equal(ours, E)


@st.composite
def mask_case(draw):
    """Random GT polygons (sometimes several per object, sometimes crowd RLE) and predictions given as polygons
    with a bbox, or as compressed RLE without one: every way a segm result reaches COCOeval."""
    n_img = draw(st.integers(1, 3))
    images = [{"id": i + 1, "width": draw(st.integers(8, 40)), "height": draw(st.integers(8, 40))}
              for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(draw(st.integers(1, 2)))]
    anns = []
    for i in range(draw(st.integers(1, 8))):
        img = draw(st.sampled_from(images))
        h, w = img["height"], img["width"]
        polys = [polygon(draw, h, w) for _ in range(draw(st.integers(1, 2)))]
        rle = M.merge(M.frPyObjects(polys, h, w))
        crowd = draw(st.integers(0, 6)) == 0
        seg = {"size": [h, w], "counts": [int(v) for v in O.counts(rle)]} if crowd else polys
        anns.append({"id": i + 1, "image_id": img["id"], "category_id": draw(st.sampled_from(cats))["id"],
                     "bbox": [float(v) for v in M.toBbox(rle)], "area": float(M.area(rle)), "iscrowd": int(crowd),
                     "segmentation": seg})
    dets = []
    as_rle = draw(st.booleans())  # pycocotools decides bbox-or-mask results from the first record
    for _ in range(draw(st.integers(1, 25))):
        img = draw(st.sampled_from(images))
        h, w = img["height"], img["width"]
        polys = [polygon(draw, h, w)]
        rle = M.merge(M.frPyObjects(polys, h, w))
        d = {"image_id": img["id"], "category_id": draw(st.sampled_from(cats))["id"],
             "score": draw(st.sampled_from([0.5, 0.9]) | st.floats(0, 1))}
        if as_rle:
            d["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
        else:
            d["segmentation"] = polys
            d["bbox"] = [float(v) for v in M.toBbox(rle)]
        dets.append(d)
    return {"images": images, "categories": cats, "annotations": anns}, dets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=mask_case())
def test_random_mask_sets_equal_pycocotools(tmp_path, case):
    """The first evaluation decodes every mask (to store them); later ones read the stored masks and decode
    only those whose box overlaps a GT they are compared with (same class, or any class when class-agnostic):
    all three equal pycocotools."""
    gt, dts = case
    d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    ingest(d / "ws", gt=write_json(d / "gt.json", gt), predictions=[(write_json(d / "dt.json", dts), "r")])
    E = pycoco_eval(gt, dts, iou_type="segm")
    for ours in (evaluate(d / "ws", "r", iou_type="segm"), evaluate(d / "ws", "r", iou_type="segm")):
        assert_arrays_equal(ours, E)
        np.testing.assert_allclose([ours.stats[k] for k in STATS], E.stats, rtol=0, atol=1e-12)
    agnostic = evaluate(d / "ws", "r", Params(use_cats=False), iou_type="segm")
    assert_arrays_equal(agnostic, pycoco_eval(gt, dts, iou_type="segm", use_cats=False))


def test_mask_tables_hold_pycocotools_masks_and_reset_with_a_new_gt(tmp_path):
    """The first segm evaluation stores every mask once (gt_masks, prediction_masks): the same RLE, area and box
    as pycocotools' annToRLE / area / toBbox; the next evaluation reads them back; a new GT empties gt_masks."""
    from pycocotools.coco import COCO

    folder = "cocoapi-val2014-100"
    gt, dt = shared(folder, "instances_val2014_100.json"), shared(folder, "instances_val2014_fakesegm100_results.json")
    ws = tmp_path / "ws"
    ingest(ws, gt=gt, predictions=[(dt, "r")])
    first = evaluate(ws, "r", iou_type="segm")
    from odfail import Workspace

    view = Workspace(ws)
    rows = view.sql("select gt_id, height, width, area, x, y, w, h, counts from gt_masks").rows()
    coco = COCO(str(gt))
    assert len(rows) == len(coco.anns)
    for gt_id, height, width, area, x, y, w, h, counts in rows:
        ref = coco.annToRLE(coco.anns[gt_id])
        ref = M.frPyObjects(ref, *ref["size"]) if isinstance(ref["counts"], list) else ref
        assert counts.encode() == ref["counts"] and [height, width] == ref["size"]
        assert area == M.area(ref) and [x, y, w, h] == M.toBbox(ref).tolist()
    file_counts = [d["segmentation"]["counts"] for d in json.loads(dt.read_text())]
    assert view.sql("select counts from prediction_masks order by pred_id")["counts"].to_list() == file_counts
    again = evaluate(ws, "r", iou_type="segm")
    np.testing.assert_array_equal(again.precision, first.precision)
    ingest(ws, gt=gt)
    assert view.sql("select count(*) n from gt_masks")["n"][0] == 0
    assert view.sql("select count(*) n from prediction_masks")["n"][0] == 0


def test_cli_evaluates_masks(tmp_path):
    folder = "detectron2-val2017-mini"
    from tests.conftest import odfail_cli

    ws = tmp_path / "ws"
    assert odfail_cli("ingest", "-w", ws, "--gt", shared(folder, "gt.json"), "--pred", shared(folder, "dt.json"),
                      "--run", "mrcnn").returncode == 0
    res = odfail_cli("evaluate", "-w", ws, "--run", "mrcnn", "--iou-type", "segm", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["iou_type"] == "segm"
    assert doc["coco"]["AP"] == pytest.approx(_expected(folder, "segm")["stats"][0], abs=1e-12)
    res = odfail_cli("evaluate", "-w", ws, "--run", "mrcnn", "--iou-type", "keypoints")
    assert res.returncode == 2 and res.stderr.strip() == "error: --iou-type keypoints: expected bbox or segm"
    res = odfail_cli("errors", "-w", ws, "--run", "mrcnn", "--iou-type", "segm", "--format", "json")
    assert json.loads(res.stdout)["iou_type"] == "segm"


@RNG_SETTINGS
@given(h=st.integers(1, 12), w=st.integers(1, 12), h2=st.integers(1, 12), density=st.floats(0, 1),
       crowd=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_mask_iou_walking_only_shared_columns_equals_the_full_walk(h, w, h2, density, crowd, seed):
    """`_kernels._mask_iou` walks only the pixel columns both mask boxes span and takes the union as
    area + area - intersection; rleIou walks both encodings whole. Against the pixels themselves: same IoU.
    Masks of different heights (possible only for images without a size) are walked whole (lo = 0), and
    then, as rleIou, compare pixel positions in column-major order."""
    from odfail.match import _kernels, _rle

    rng = np.random.default_rng(seed)
    a = (rng.random((h, w)) < density).astype(np.uint8)
    b = (rng.random((h if h2 == h else h2, w)) < density).astype(np.uint8)
    fa, fb = a.T.ravel(), b.T.ravel()  # column-major, as RLEs run
    ca, cb = _rle.encode(fa), _rle.encode(fb)
    n = min(len(fa), len(fb))
    inter = int((fa[:n] & fb[:n]).sum())
    area_a, area_b = int(fa.sum()), int(fb.sum())
    expected = 0.0 if inter == 0 else inter / (area_a if crowd else area_a + area_b - inter)
    if h2 == h:
        box_a, box_b = O.to_bbox(O.encode(a)), O.to_bbox(O.encode(b))
        lo = int(max(box_a[0], box_b[0])) * h
        hi = int(min(box_a[0] + box_a[2], box_b[0] + box_b[2])) * h
        if area_a and area_b and hi > lo:
            assert _kernels._mask_iou(ca, 0, len(ca), cb, 0, len(cb), crowd, area_a, area_b, lo, hi) == expected
    assert _kernels._mask_iou(ca, 0, len(ca), cb, 0, len(cb), crowd, area_a, area_b, 0, 2**62) == expected


@pytest.mark.parametrize("missing", ["width", "height"])
def test_polygons_of_an_image_without_a_size_are_refused_naming_it(tmp_path, missing):
    """pycocotools rasterises polygons at their image's size; without one, segm evaluation names the image."""
    from odfail.exceptions import WorkspaceError

    square = [[1, 1, 6, 1, 6, 6, 1, 6]]
    images = [{"id": 1, "width": 20, "height": 20}, {"id": 2, "width": 20, "height": 20}]
    del images[1][missing]
    gt = {"images": images, "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25,
                           "iscrowd": 0, "segmentation": square} for i in (1, 2)]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9, "segmentation": square}]
    ingest(tmp_path / "ws", gt=write_json(tmp_path / "gt.json", gt),
           predictions=[(write_json(tmp_path / "dt.json", dt), "r")])
    with pytest.raises(WorkspaceError, match="image 2 has no width/height"):
        evaluate(tmp_path / "ws", "r", iou_type="segm")


@RNG_SETTINGS
@given(h=st.integers(1, 40), w=st.integers(1, 40), cuts=st.lists(st.integers(0, 1600), max_size=14),
       empty=st.lists(st.integers(0, 14), max_size=3), drop_last=st.booleans())
def test_one_pass_area_and_box_equal_pycocotools_on_any_rle(h, w, cuts, empty, drop_last):
    """`_rle.string_stats` boxes a string in one pass, stepping rows instead of dividing (`_stats_one`); on any
    RLE pycocotools reads (empty runs, an empty first run of 1s, an odd number of runs) it must give
    pycocotools' area and toBbox, and the decoder's run total. (pycocotools 2.0.11's toBbox passes over a pair
    of runs whose run of 1s is empty; this test found that.)"""
    from odfail.match import _rle

    runs = np.diff([0, *sorted(min(c, h * w) for c in cuts), h * w]).astype(np.uint32)
    for at in empty:  # empty runs anywhere, including the first run of 1s (rleToBbox then wraps below 0)
        runs = np.insert(runs, min(at, len(runs)), 0).astype(np.uint32)
    if drop_last and len(runs) > 1:
        runs = runs[:-1]
    data, off = _rle.to_strings(runs, np.array([0, len(runs)], dtype=np.int64))
    ref = {"size": [h, w], "counts": data.tobytes()}
    area, box, total, bad = _rle.string_stats(data, off[:-1], off[1:], np.array([h]), np.array([w]), False)
    assert bad[0] == 0 and total[0] == int(runs.sum()) and area[0] == M.area(ref)
    np.testing.assert_array_equal(box[0], M.toBbox(ref))
    np.testing.assert_array_equal(O.to_bbox(ref), M.toBbox(ref))  # `_area_box`, rleToBbox line for line


@RNG_SETTINGS
@given(h=st.integers(1, 30), w=st.integers(1, 30), density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_strings_read_in_their_json_text_decode_like_plain_ones(h, w, density, seed):
    """A results file's compressed string is decoded where it lies in the segmentation's JSON text, where a
    backslash (one of the 64 characters) is written twice: the same runs, area and box as the plain string."""
    from odfail.match import _rle

    m = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    plain = M.encode(np.asfortranarray(m))["counts"]
    text = np.frombuffer(json.dumps(plain.decode()).encode(), dtype=np.uint8)  # with its quotes
    raw = np.frombuffer(plain, dtype=np.uint8)
    spans = {True: (np.array([1]), np.array([len(text) - 1])), False: (np.array([0]), np.array([len(raw)]))}
    out = {}
    for escaped, data in ((True, text), (False, raw)):
        start, end = spans[escaped]
        out[escaped] = (_rle.from_strings(data, start, end, escaped),
                        _rle.string_stats(data, start, end, np.array([h]), np.array([w]), escaped))
    (cnt_e, _, bad_e), stats_e = out[True]
    (cnt_p, _, bad_p), stats_p = out[False]
    assert bad_e[0] == bad_p[0] == 0
    np.testing.assert_array_equal(cnt_e, cnt_p)
    np.testing.assert_array_equal(cnt_p, O.counts({"counts": plain}))
    for a, b in zip(stats_e, stats_p):
        np.testing.assert_array_equal(a, b)


def test_segmentation_texts_are_read_as_json_reads_them():
    """`_seg_kernels.read_segmentations` against Python's json on every form a stored text can take: white
    space, keys in either order or unknown, null, numbers beyond the exact fast path (more than 18 digits, large
    exponents), crowd run lengths; and UNREAD for what is not a segmentation."""
    from odfail.match import _rle
    from odfail.match import _seg_kernels as S

    texts = [
        '[[1, 2, 3, 4, 5, 6], [0.1, 0.2 , 10.5e1, 7, 8, 9.25]]',
        '[[123.45678901234567891, 1e-400, 2.5E+2, 0.30000000000000004441, 3, 4]]',
        '{"counts": "PPYo0", "size": [10, 20]}',
        '{ "size" : [ 3 , 4 ] , "extra": {"a": [1, {"b": null}]}, "counts" : [0, 5, 7] }',
        '{"size":[2,2],"counts":"a\\\\b"}',
        'null', '', '{"size": [2, 2], "counts": "a\\u0041"}',
        '{"size": [2, 2]}', '[[1, 2, 3, 4]]', '[[1, 2, 3, 4, 5, "x"]]', '{"size": [2, 2], "counts": 5}',
        '[[1, 2, 3, 4, 5, 6]] x', '7', '{"size": [2, 2], "counts": "a\\"b"}',
    ]
    expected = [S.POLYGONS, S.POLYGONS, S.STRING, S.RUNS, S.STRING, S.NONE, S.NONE, S.STRING] + [S.UNREAD] * 7
    raw = [t.encode() for t in texts]
    data = np.frombuffer(b"".join(raw), dtype=np.uint8)
    off = np.concatenate(([0], np.cumsum([len(r) for r in raw]))).astype(np.int64)
    kind, h, w, start, end, xy, poly_off, runs, slow = S.read_segmentations(data, off)
    assert kind.tolist() == expected
    for j in range(slow.shape[1]):
        xy[slow[0, j]] = float(data[slow[1, j]: slow[2, j]].tobytes())
    for r in (0, 1):
        polys = [xy[poly_off[p]: poly_off[p + 1]].tolist() for p in range(start[r], end[r])]
        assert polys == json.loads(texts[r])  # float equality: the same doubles as json.load
    assert (h[2], w[2], data[start[2]: end[2]].tobytes()) == (10, 20, b"PPYo0")
    assert (h[3], w[3], runs[start[3]: end[3]].tolist()) == (3, 4, [0, 5, 7])
    assert data[start[4]: end[4]].tobytes() == b"a\\\\b"
    # an escape ingest would not have let in is read as a string, and the decoders refuse it
    assert _rle.string_stats(data, start[7:8], end[7:8], h[7:8], w[7:8], True)[3][0] == 1


def test_segm_evaluation_reads_texts_of_either_reader(tmp_path):
    """A results file the fast ingest reader takes and one it leaves to DuckDB (an extra key in a segmentation:
    DuckDB then stores the text re-printed) give the same segm evaluation as pycocotools, and the mask tables
    written for them read back equal."""
    folder = "detectron2-val2017-mini"
    gt = json.loads(shared(folder, "gt.json").read_text())
    dts = json.loads(shared(folder, "dt.json").read_text())
    odd = [dict(d, segmentation=dict(d["segmentation"], source="mrcnn")) for d in dts]
    E = pycoco_eval(gt, dts, iou_type="segm")
    ws = tmp_path / "ws"
    ingest(ws, gt=write_json(tmp_path / "gt.json", gt),
           predictions=[(write_json(tmp_path / "a.json", dts), "plain"), (write_json(tmp_path / "b.json", odd), "odd")])
    for run in ("plain", "odd", "plain", "odd"):  # the second time from the stored mask tables
        assert_arrays_equal(evaluate(ws, run, iou_type="segm"), E)
