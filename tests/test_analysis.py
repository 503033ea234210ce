"""Per-class outcomes, PR curves at any IoU, calibration and run comparison against pycocotools and hand-made cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odfail import ingest
from odfail.analysis.calibration import calibration
from odfail.analysis.classes import per_class, pr_curves
from odfail.analysis.compare import compare
from odfail.evaluate.coco import evaluate
from tests.conftest import odfail_cli, shared, write_json
from tests.oracle import pycoco_eval
from tests.test_evaluate_oracle import BBOX_SETS

SETS = pytest.mark.parametrize("folder,gt,dt", [s[:3] for s in BBOX_SETS], ids=[s[0] for s in BBOX_SETS])


def _mean_valid(a):
    s = a[a > -1]
    return float(np.mean(s)) if len(s) else None


def _ws(tmp_path, folder, gt, dt, runs=None):
    ws = tmp_path / "ws"
    ingest(ws, gt=shared(folder, gt), predictions=runs or [(shared(folder, dt), "r")])
    return ws


@SETS
def test_per_class_ap_and_ar_and_curves_equal_pycocotools_per_class(tmp_path, folder, gt, dt):
    """ap (at .5 and .75), ap_50_95 and ar per class are pycocotools' per-class values to the bit, a class without
    GT has none (pycocotools: -1); the 101-point curves equal precision[t, :, k, 0, -1] element-wise; TP/FP/FN
    equal `odfail evaluate`'s headline per class."""
    ws = _ws(tmp_path, folder, gt, dt)
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)))
    P, R = E.eval["precision"], E.eval["recall"]
    for t, iou in ((0, 0.5), (5, 0.75)):
        table = per_class(ws, "r", iou).table
        assert table["category_id"].to_list() == list(E.params.catIds)
        for k, row in enumerate(table.iter_rows(named=True)):
            assert row["ap"] == _mean_valid(P[t, :, k, 0, -1])
            assert row["ap_50_95"] == _mean_valid(P[:, :, k, 0, -1])
            assert row["ar"] == _mean_valid(R[:, k, 0, -1])
        pr = pr_curves(ws, "r", iou)
        for k, c in enumerate(pr.classes):
            np.testing.assert_array_equal(np.array(c["precision_101"]), P[t, :, k, 0, -1])
        assert pr.all["ap"] == E.stats[1 if t == 0 else 2]
    ours = evaluate(ws, "r", write_matches=False).per_class
    table = per_class(ws, "r", 0.5).table
    for key in ("tp", "fp", "fn"):
        assert table[key].to_list() == ours[key].tolist()


def _eval_imgs_at(E, t):
    """Per evaluated (image, class) at area "all", maxDets 100: (scores, tp, counted, gt ids, gt found, gt ignored)."""
    for e in E.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        ig = e["dtIgnore"][t].astype(bool)
        tp = (e["dtMatches"][t] != 0) & ~ig
        yield (np.asarray(e["dtScores"]), tp, ~ig, np.asarray(e["gtIds"]), e["gtMatches"][t] != 0,
               np.asarray(e["gtIgnore"]).astype(bool))


@SETS
def test_ece_equals_one_computed_from_pycocotools_eval_imgs(tmp_path, folder, gt, dt):
    ws = _ws(tmp_path, folder, gt, dt)
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)))
    for t, iou in ((0, 0.5), (5, 0.75)):
        parts = list(_eval_imgs_at(E, t))
        score = np.concatenate([p[0][p[2]] for p in parts])
        hit = np.concatenate([p[1][p[2]] for p in parts])
        inside = (score >= 0) & (score <= 1)
        s, h = score[inside], hit[inside]
        b = np.minimum((s * 10).astype(int), 9)
        ece = sum((b == i).sum() / len(s) * abs(h[b == i].mean() - s[b == i].mean()) for i in range(10)
                  if (b == i).any())
        got = calibration(ws, "r", iou, 10)
        assert got.n == len(s) and got.outside_0_1 == int((~inside).sum())
        assert got.ece == pytest.approx(ece, abs=1e-12)


def test_calibration_bins_ece_and_mce_of_a_hand_made_run(tmp_path):
    """Four images with one GT each; five predictions: scores 0.95 (TP), 0.85 (FP), 0.3 (TP), 1.0 (TP: the last
    bin), 1.5 (outside [0, 1], not binned), and one on a crowd region (left out).
    Bins of 0.5: [0, .5) holds 0.3 (precision 1, mean 0.3: gap 0.7); [.5, 1] holds 0.95, 0.85, 1.0 (precision
    2/3, mean 2.8/3: gap 0.8/3). ECE = 1/4 * 0.7 + 3/4 * 0.8/3 = 0.375; MCE = 0.7."""
    gt = {"images": [{"id": i, "width": 100, "height": 100} for i in (1, 2, 3, 4)],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0} for i in (1, 2, 3, 4)]
          + [{"id": 9, "image_id": 4, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 1}]}
    box, off = [10, 10, 20, 20], [60, 10, 20, 20]
    preds = [{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.95},
             {"image_id": 2, "category_id": 1, "bbox": off, "score": 0.85},
             {"image_id": 3, "category_id": 1, "bbox": box, "score": 0.3},
             {"image_id": 4, "category_id": 1, "bbox": box, "score": 1.0},
             {"image_id": 2, "category_id": 1, "bbox": [0, 80, 10, 10], "score": 1.5},
             {"image_id": 4, "category_id": 1, "bbox": [55, 55, 30, 30], "score": 0.7}]
    ws = tmp_path / "ws"
    ingest(ws, gt=write_json(tmp_path / "gt.json", gt), predictions=[(write_json(tmp_path / "p.json", preds), "r")])
    c = calibration(ws, "r", 0.5, bins=2)
    assert [b["n"] for b in c.bins] == [1, 3] and c.outside_0_1 == 1 and c.n == 4
    assert c.bins[0]["precision"] == 1.0 and c.bins[1]["precision"] == pytest.approx(2 / 3)
    assert c.bins[1]["mean_score"] == pytest.approx(2.8 / 3)
    assert c.ece == pytest.approx(0.375) and c.mce == pytest.approx(0.7)
    # best F1: by score 1.5 (FP), 1.0 (TP), 0.95 (TP), 0.85 (FP), 0.3 (TP) over 4 GT. After 0.95: P 2/3, R 1/2,
    # F1 4/7; after 0.3: P 3/5, R 3/4, F1 2/3 -- the best, at threshold 0.3
    row = per_class(ws, "r", 0.5).table.row(0, named=True)
    assert row["best_f1"] == pytest.approx(2 / 3) and row["best_f1_threshold"] == 0.3
    assert (row["tp"], row["fp"], row["fn"], row["predictions"]) == (3, 2, 1, 6)
    row = per_class(ws, "r", 0.5, score=0.9).table.row(0, named=True)
    assert (row["tp"], row["fp"], row["fn"], row["predictions"]) == (2, 1, 2, 3)


def test_compare_of_a_hand_made_pair_of_runs(tmp_path):
    """Run a finds GT 1 and misses GT 2; run b misses GT 1, finds GT 2 and adds a false positive on image 1."""
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400}]}
    a = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
         {"image_id": 2, "category_id": 1, "bbox": [60, 60, 20, 20], "score": 0.8}]
    b = [{"image_id": 1, "category_id": 1, "bbox": [60, 60, 20, 20], "score": 0.9},
         {"image_id": 1, "category_id": 1, "bbox": [70, 0, 20, 20], "score": 0.5},
         {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.8}]
    ws = tmp_path / "ws"
    ingest(ws, gt=write_json(tmp_path / "gt.json", gt), predictions=[
        (write_json(tmp_path / "a.json", a), "a"), (write_json(tmp_path / "b.json", b), "b")])
    c = compare(ws, "a", "b")
    assert c.found_by_a_missed_by_b == 1 and c.found_by_b_missed_by_a == 1
    assert c.headline["tp"] == {"a": 1, "b": 1, "delta": 0} and c.headline["fp"] == {"a": 1, "b": 2, "delta": 1}
    assert c.images.row(0, named=True) == {"image_id": 1, "new_fn": 1, "fixed_fn": 0, "fp_a": 0, "fp_b": 2,
                                           "worse_by": 3}
    from odfail import Workspace

    diff = Workspace(ws).sql("set variable run_a = 'a'; set variable run_b = 'b'; "
                             "select gt_id, change from run_diff order by gt_id")
    assert diff.rows() == [(1, "broken"), (2, "fixed")]


def test_compare_found_and_missed_equal_pycocotools_eval_imgs_of_both_runs(tmp_path):
    folder, gt, dt = BBOX_SETS[0][:3]
    preds = json.loads(shared(folder, dt).read_text())
    rng = np.random.default_rng(0)  # run b: a fifth of the predictions dropped, the rest rescored
    b = [dict(p, score=float(p["score"] * rng.uniform(0.7, 1.3))) for p in preds if rng.random() > 0.2]
    b_path = write_json(tmp_path / "b.json", b)
    ws = _ws(tmp_path, folder, gt, dt, [(shared(folder, dt), "a"), (b_path, "b")])
    for t, iou in ((0, 0.5), (5, 0.75)):
        found = []
        for d in (str(shared(folder, dt)), str(b_path)):
            E = pycoco_eval(str(shared(folder, gt)), d, summarize=False)
            found.append({int(g) for p in _eval_imgs_at(E, t) for g, f, ig in zip(p[3], p[4], p[5]) if f and not ig})
        c = compare(ws, "a", "b", iou)
        assert c.found_by_a_missed_by_b == len(found[0] - found[1])
        assert c.found_by_b_missed_by_a == len(found[1] - found[0])
        assert c.coco["AP"]["b"] == pytest.approx(pycoco_eval(str(shared(folder, gt)), str(b_path)).stats[0],
                                                  abs=1e-12)


@pytest.mark.parametrize("args,message", [
    (["analyze", "--run", "nope", "per-class"], "error: no run 'nope' in"),
    (["analyze", "--run", "r", "pr", "--class", "unicorn"], "error: --class unicorn: no such class"),
    (["analyze", "--run", "r", "per-class", "--iou", "1.2"], "error: --iou 1.2 must be between 0.05 and 0.95"),
    (["analyze", "--run", "r", "calibration", "--iou", "0"], "error: --iou 0.0 must be between 0.05 and 0.95"),
    (["analyze", "--run", "r", "calibration", "--bins", "0"], "error: --bins 0 must be at least 1"),
    (["compare", "--run", "r", "--run", "r"], "error: --run r twice: compare needs two different runs"),
    (["compare", "--run", "r"], "error: --run given 1 times"),
], ids=["unknown-run", "unknown-class", "iou-above-1", "iou-0", "bins-0", "run-with-itself", "one-run"])
def test_bad_analysis_input_exits_2_with_one_line(tmp_path, args, message):
    folder, gt, dt = BBOX_SETS[2][:3]
    ws = _ws(tmp_path, folder, gt, dt)
    res = odfail_cli(args[0], "-w", ws, *args[1:])
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(message) and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_analyses_work_right_after_ingest_and_an_extra_iou_is_matched_and_stored(tmp_path):
    """The CLI answers right after ingest (outcomes are matched on first use); an IoU off the 0.05 grid is
    matched as one more threshold and stored; the views read the stored outcomes at a chosen threshold."""
    folder, gt, dt = BBOX_SETS[2][:3]
    ws = _ws(tmp_path, folder, gt, dt)
    doc = json.loads(odfail_cli("analyze", "-w", ws, "--run", "r", "pr", "--iou", "0.33").stdout)
    assert doc["iou"] == 0.33 and len(doc["all"]["precision_101"]) == 101
    E = pycoco_eval(str(shared(folder, gt)), str(shared(folder, dt)))
    from odfail import Workspace

    thresholds = Workspace(ws).sql(f"select iou_threshold from read_parquet('{ws}/outcome_thresholds/r.parquet') "
                                   "order by bit")["iou_threshold"]
    assert len(thresholds) == 20 and 0.33 in thresholds.to_list()
    tp = Workspace(ws).sql("set variable iou_threshold = 0.5; "
                           "select count(*) as n from prediction_outcomes where outcome = 'TP'")["n"][0]
    assert tp == sum(int(p[1].sum()) for p in _eval_imgs_at(E, 0))
    res = json.loads(odfail_cli("analyze", "-w", ws, "--run", "r", "per-class", "-f", "json").stdout)
    assert {"category_id", "name", "gt", "predictions", "tp", "fp", "fn", "precision", "recall", "f1", "ap",
            "ap_50_95", "ar", "best_f1", "best_f1_threshold"} <= set(res["classes"][0])


def test_saved_per_class_query_counts_what_per_class_counts(tmp_path):
    """sql/queries/per_class_outcomes.sql gives plain DuckDB users the counts of `odfail analyze per-class`."""
    from odfail import Workspace
    from odfail.store.workspace import sql_dir

    folder, gt, dt = BBOX_SETS[0][:3]
    ws = _ws(tmp_path, folder, gt, dt)
    ours = per_class(ws, "r", 0.75, score=0.3).table
    query = (sql_dir() / "queries" / "per_class_outcomes.sql").read_text()
    got = Workspace(ws).sql("set variable iou_threshold = 0.75; set variable score_threshold = 0.3; " + query,
                            run="r")
    assert got["category_id"].to_list() == ours["category_id"].to_list()
    for key in ("gt", "tp", "fp", "fn"):
        assert got[key].to_list() == ours[key].to_list(), key
    assert got["found"].to_list() == ours["tp"].to_list()  # no GT id 0 here: found GT = TP predictions
