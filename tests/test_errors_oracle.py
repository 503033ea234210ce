"""TIDE error taxonomy: equal to tidecv on every bbox set of ../shared/data, on generated and on random cases;
a hand-computed case for every error type; the confusion matrix; invariants; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odfail import Workspace, ingest
from odfail.evaluate.confusion import confusion
from odfail.evaluate.tide import errors
from odfail.match.tide import tide_facts
from odfail.store.workspace import sql_dir
from odfail.synth import generate
from tests.conftest import odfail_cli, shared, write_json
from tests.oracle import tide_eval
from tests.test_evaluate_oracle import BBOX_SETS

CHECKS = sorted((sql_dir() / "queries").glob("check_*.sql"))
TYPES = ["Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"]
# The issue asks for 2e-4 (0.02 AP points); odfail reproduces tidecv's arithmetic, so hold it to float noise.
TOL = 1e-9


def assert_equal_to_tidecv(ours, oracle) -> None:
    assert ours.counts == oracle["counts"]
    assert ours.ap == pytest.approx(oracle["ap"], abs=TOL)
    for name, value in oracle["dAP"].items():
        assert ours.dap[name] == pytest.approx(value, abs=TOL), name


def _ingest(tmp_path, gt, dt, name="ws"):
    ingest(tmp_path / name, gt=gt, predictions=[(dt, "r")])
    return tmp_path / name


@pytest.mark.parametrize("folder,gt,dt", [s[:3] for s in BBOX_SETS], ids=[s[0] for s in BBOX_SETS])
def test_real_sets_equal_tidecv(tmp_path, folder, gt, dt):
    """Counts equal and every dAP (and the AP) within float noise of tidecv 1.0.1, on real evaluation sets
    (crowd regions in 2299 and cocoapi, missing segmentation in padilla and torchmetrics)."""
    ws = _ingest(tmp_path, shared(folder, gt), shared(folder, dt))
    ours = errors(ws, "r")
    assert_equal_to_tidecv(ours, tide_eval(str(shared(folder, gt)), str(shared(folder, dt))))
    view = Workspace(ws)
    for check in CHECKS:
        assert view.sql(check.read_text()).is_empty(), check.name


MASK_SETS = [("cocoapi-val2014-100", "instances_val2014_100.json", "instances_val2014_fakesegm100_results.json"),
             ("fce-shapes-segm", "gt_dataset.json", "dt_dataset_rle_nobbox.json"),
             ("detectron2-val2017-mini", "gt.json", "dt.json")]


@pytest.mark.parametrize("folder,gt,dt", MASK_SETS, ids=[s[0] for s in MASK_SETS])
def test_mask_mode_equals_tidecv(tmp_path, folder, gt, dt):
    """tidecv's mask mode (TIDE.MASK): the same rules on mask IoU, crowd regions as masks too; the bbox rows
    of tide_matches stay apart from the segm ones. The first matching decodes every mask and stores them;
    errors() then matches from the stored masks, decoding only those whose box overlaps a GT of any class."""
    ws = _ingest(tmp_path, shared(folder, gt), shared(folder, dt))
    tide_facts(Workspace(ws), "r", 0.5, "segm")
    ours = errors(ws, "r", iou_type="segm")
    assert_equal_to_tidecv(ours, tide_eval(str(shared(folder, gt)), str(shared(folder, dt)), mode="segm"))
    errors(ws, "r")  # bbox rows beside the segm rows
    view = Workspace(ws)
    n = view.sql("select count(*) n from predictions")["n"][0]
    assert view.sql("select iou_type, count(*) n from tide_matches group by 1 order by 1").rows() == [
        ("bbox", n), ("segm", n)]


@pytest.mark.parametrize("pos,bg", [(0.5, 0.1), (0.75, 0.3), (0.3, 0.05)])
def test_generated_set_equals_tidecv_at_several_thresholds(tmp_path, pos, bg):
    """A generated set with every failure mode (confusion among similar classes, jitter, duplicates, crowd,
    background, > 100 predictions on some images), at non-default foreground/background thresholds."""
    s = generate(tmp_path / "data", images=120, seed=7)
    ws = _ingest(tmp_path, s.gt_path, s.pred_path)
    ours = errors(ws, "r", pos_threshold=pos, bg_threshold=bg)
    assert_equal_to_tidecv(ours, tide_eval(str(s.gt_path), str(s.pred_path), pos=pos, bg=bg))
    view = Workspace(ws)
    view_con = view.connect()
    try:
        view_con.execute("set variable pos_threshold = $p", {"p": pos})
        view_con.execute("set variable bg_threshold = $b", {"b": bg})
        for check in CHECKS:
            assert not view_con.sql(check.read_text()).fetchall(), check.name
    finally:
        view_con.close()


# ---------- a case computed by hand ----------

@pytest.fixture
def every_type(tmp_path):
    """Image 1: GT A (cat 1) and C (cat 1), B and D (cat 2). Image 2 has no GT.

    p1 cat 1 on A exactly (0.9): TP. p2 cat 1 on A again (0.8): A is taken -> Dupe.
    p3 cat 1 on B (0.7): no cat-1 overlap, B is another class at IoU 1 -> Cls (fixes B).
    p4 cat 1 on the top 4 rows of C (0.6): IoU 40/100 = 0.4, in [0.1, 0.5] -> Loc (fixes C).
    p5 cat 2 on the top 3 rows of A (0.5): no cat-2 overlap, A at 30/100 = 0.3 < 0.5 -> not Cls; no taken
    cat-2 GT -> not Dupe; 0.3 > 0.1 -> Both. p6 cat 2 far from everything (0.4): Bkg. p7 on image 2: Bkg.
    D is found by nothing: Miss.
    """
    gt = {"images": [{"id": 1, "width": 400, "height": 400}, {"id": 2, "width": 400, "height": 400}],
          "categories": [{"id": 1, "name": "cat", "supercategory": "animal"},
                         {"id": 2, "name": "dog", "supercategory": "animal"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 3, "image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 4, "image_id": 1, "category_id": 2, "bbox": [300, 300, 10, 10], "area": 100, "iscrowd": 0}]}
    preds = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
             {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
             {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.7},
             {"image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 4], "score": 0.6},
             {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 3], "score": 0.5},
             {"image_id": 1, "category_id": 2, "bbox": [200, 200, 5, 5], "score": 0.4},
             {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.3}]
    ws = _ingest(tmp_path, write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "p.json", preds))
    return ws, gt, preds


def test_every_error_type_by_hand(every_type):
    ws, gt, preds = every_type
    result = errors(ws, "r")
    view = Workspace(ws)
    got = view.sql("select pred_id, error_type, error_gt, fixes_gt, suppressed_by from prediction_errors "
                   "order by pred_id").rows()
    assert got == [(1, "TP", None, False, None), (2, "Dupe", 1, False, 1), (3, "Cls", 2, True, None),
                   (4, "Loc", 3, True, None), (5, "Both", None, False, None), (6, "Bkg", None, False, None),
                   (7, "Bkg", None, False, None)]
    assert view.sql("select gt_id, status, matched_pred, fixed_by from gt_errors order by gt_id").rows() == [
        (1, "TP", 1, None), (2, "Cls", None, 3), (3, "Loc", None, 4), (4, "Miss", None, None)]
    assert result.counts == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 2, "Miss": 1}
    assert result.duplicates == {"objects": 1, "most": 1}
    # tidecv's AP by hand: cat 1 has points TP .9, FP .8, FP .7, FP .6, FP .3 and 2 GT: recall 0.5 at
    # precision 1 -> 51 of 101 points = 50.50 AP; cat 2 has FP .5, FP .4 and 2 GT: AP 0. Mean 25.25.
    assert result.ap == pytest.approx(51 / 101 / 2, abs=1e-15)
    # fixing Miss (D) leaves cat 2 with 1 GT and no TP: still 0. Fixing Cls moves p3 to cat 2 as a TP
    # (cat 2: TP .7 before FP .5, .4 -> recall 1/2 at precision 1 -> 50.50; cat 1 loses an FP, still 50.50).
    assert result.dap["Cls"] == pytest.approx(51 / 101 / 2, abs=1e-15)
    assert result.dap["Miss"] == 0.0
    assert_equal_to_tidecv(result, tide_eval(gt, preds))


def test_crowd_region_ignores_only_above_pos(tmp_path):
    """tidecv ignores an unmatched prediction in a same-class crowd region only when crowd IoU (intersection /
    prediction area) is > pos, strictly. X covers half of its own area inside the crowd box (0.5: scored,
    an FP above the TP), Y 90% (ignored, yet still counted as an error, as tidecv counts it)."""
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "cat"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 1}]}
    preds = [{"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.5},
             {"image_id": 1, "category_id": 1, "bbox": [5, 0, 10, 10], "score": 0.9},
             {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.8}]
    ws = _ingest(tmp_path, write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "p.json", preds))
    result = errors(ws, "r")
    assert Workspace(ws).sql("select pred_id, error_type, ignored from prediction_errors order by 1").rows() == [
        (1, "TP", False), (2, "Bkg", False), (3, "Bkg", True)]
    # FP (X) then TP: precision 1/2 at recall 1 -> every one of the 101 points reads 0.5
    assert result.ap == pytest.approx(0.5, abs=1e-15)
    assert result.counts["Bkg"] == 2
    assert_equal_to_tidecv(result, tide_eval(gt, preds))


def test_confusion_matrix_by_hand(every_type):
    """Rows actual, columns predicted, background last. p1 is (cat, cat); p3's Cls claims the free GT B:
    (dog, cat); p2, p4 and p7 found no free object: (bg, cat); p5, p6: (bg, dog). C and D: (., bg)."""
    ws, _, _ = every_type
    c = confusion(ws, "r", iou=0.5)
    assert c.labels == ["cat", "dog", "background"]
    np.testing.assert_array_equal(c.matrix, [[1, 0, 1], [1, 0, 1], [3, 2, 0]])
    assert c.top_pairs == [("dog", "cat", 1)]
    # only p1 and p2 (score >= 0.75): B is no longer claimed
    np.testing.assert_array_equal(confusion(ws, "r", iou=0.5, score=0.75).matrix,
                                  [[1, 0, 1], [0, 0, 2], [1, 0, 0]])
    sup = confusion(ws, "r", by="supercategory")
    assert sup.labels == ["animal", "background"]
    np.testing.assert_array_equal(sup.matrix, [[2, 2], [5, 0]])


def test_confusion_rows_sum_to_gt_and_columns_to_predictions(tmp_path):
    """One-to-one: each regular GT once in its row, each scored prediction outside crowd regions once."""
    s = generate(tmp_path / "data", images=80, seed=11)
    ws = _ingest(tmp_path, s.gt_path, s.pred_path)
    c = confusion(ws, "r", iou=0.5, score=0.2)
    view = Workspace(ws)
    names = [r[0] for r in view.sql("select name from categories order by category_id").rows()]
    assert c.labels[:-1] == names
    gt = dict(view.sql("select c.name, count(*) from gt join categories c using (category_id) "
                       "where not coalesce(iscrowd, false) group by 1").rows())
    np.testing.assert_array_equal(c.matrix[:-1].sum(axis=1), [gt.get(n, 0) for n in names])
    view_con = view.connect()
    try:
        pred = dict(view_con.execute("""select c.name, count(*) from prediction_errors p
            join categories c using (category_id) where p.score >= 0.2 and not p.ignored group by 1""").fetchall())
    finally:
        view_con.close()
    np.testing.assert_array_equal(c.matrix[:, :-1].sum(axis=0), [pred.get(n, 0) for n in names])


# ---------- random cases against tidecv ----------

@st.composite
def tide_case(draw):
    """Small random GT + results: crowd regions, equal scores, zero-area boxes, images without GT or without
    predictions, classes with predictions but no GT, more than 100 predictions on an image, IoU ties."""
    n_img = draw(st.integers(1, 3))
    n_cat = draw(st.integers(1, 3))
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(n_cat)] + [{"id": 99, "name": "no-gt"}]
    images = [{"id": 10 + i, "width": 64, "height": 64} for i in range(n_img)]
    coord = st.integers(0, 12).map(lambda v: v * 4.0)
    size = st.sampled_from([0.0, 4.0, 8.0, 16.0, 24.0, 40.0])
    anns = [{"id": 1, "image_id": 10, "category_id": 1, "bbox": [8.0, 8.0, 16.0, 16.0], "area": 256.0,
             "iscrowd": 0}]  # tidecv divides by the number of classes: keep at least one
    for i in range(draw(st.integers(0, 12))):
        b = [draw(coord), draw(coord), draw(size), draw(size)]
        anns.append({"id": 2 + i, "image_id": 10 + draw(st.integers(0, n_img - 1)),
                     "category_id": draw(st.integers(1, n_cat)), "bbox": b, "area": b[2] * b[3],
                     "iscrowd": int(draw(st.integers(0, 7)) == 0)})
    # above -1: tidecv starts a GT's best score at -1 (errors/error.py, BestGTMatch), so a prediction scoring
    # -1 or less is never its best and fixing the error raises KeyError 'best_id'; odfail has no such floor
    scores = st.sampled_from([0.1, 0.5, 0.5, 0.9]) | st.floats(-1, 1, exclude_min=True, allow_nan=False)
    dts = []
    for _ in range(draw(st.sampled_from([0, 4, 15, 40, 130]))):
        cat = 99 if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, n_cat))
        dts.append({"image_id": 10 + draw(st.integers(0, n_img - 1)), "category_id": cat,
                    "bbox": [draw(coord), draw(coord), draw(size), draw(size)], "score": draw(scores)})
    pos = draw(st.sampled_from([0.5, 0.5, 0.3, 0.75]))
    bg = draw(st.sampled_from([0.1, 0.1, 0.2, pos]))
    return {"images": images, "categories": cats, "annotations": anns}, dts, pos, bg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=tide_case())
def test_random_cases_equal_tidecv(tmp_path, case):
    gt, dts, pos, bg = case
    d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    ws = _ingest(d, write_json(d / "gt.json", gt), write_json(d / "dt.json", dts))
    ours = errors(ws, "r", pos_threshold=pos, bg_threshold=bg)
    if not dts:  # tidecv's FN oracle divides by zero classes here; odfail reports 0
        regular = sum(1 for a in gt["annotations"] if not a["iscrowd"])
        assert ours.counts == {**dict.fromkeys(TYPES, 0), "Miss": regular} and ours.dap["FN"] == 0.0
        return
    assert_equal_to_tidecv(ours, tide_eval(gt, dts, pos, bg))


# ---------- workspace life cycle and the command line ----------

def test_re_ingest_drops_stale_tide_matches(every_type, tmp_path):
    ws, gt, preds = every_type
    errors(ws, "r")
    view = Workspace(ws)
    assert view.sql("select count(*) n from tide_matches")["n"][0] == len(preds)
    ingest(ws, predictions=[(write_json(tmp_path / "p2.json", preds[:2]), "r")])
    assert view.sql("select count(*) n from tide_matches")["n"][0] == 0
    assert errors(ws, "r").counts["Dupe"] == 1


def test_thresholds_are_kept_side_by_side(every_type):
    ws, _, _ = every_type
    errors(ws, "r", pos_threshold=0.5)
    errors(ws, "r", pos_threshold=0.35)  # p4 (IoU 0.4) becomes a TP
    view = Workspace(ws)
    assert view.sql("select pos_threshold, count(*) n from tide_matches group by 1 order by 1").rows() == [
        (0.35, 7), (0.5, 7)]
    assert view.sql("select error_type from prediction_errors where pred_id = 4").rows() == [("Loc",)]
    con = view.connect()
    try:
        con.execute("set variable pos_threshold = 0.35")
        assert con.execute("select error_type from prediction_errors where pred_id = 4").fetchall() == [("TP",)]
    finally:
        con.close()


def test_cli_errors_and_confusion(every_type):
    ws, _, _ = every_type
    res = odfail_cli("errors", "-w", ws, "--run", "r", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) >= {"run", "ap50", "dAP", "counts"}
    assert set(doc["dAP"]) == {*TYPES, "FP", "FN"} and set(doc["counts"]) == set(TYPES)
    table = odfail_cli("errors", "-w", ws, "--run", "r", "--per-class").stdout
    assert "Main Errors" in table and "Special Error" in table and "dAP_Cls" in table
    res = odfail_cli("errors", "-w", ws, "--run", "r", "--bg-threshold", "0.7")
    assert res.returncode == 2 and res.stderr.strip() == "error: --bg-threshold 0.7 must be in (0, pos-threshold]"
    conf = json.loads(odfail_cli("confusion", "-w", ws, "--run", "r", "-f", "json").stdout)
    assert conf["labels"] == ["cat", "dog", "background"] and conf["matrix"][1] == [1, 0, 1]
    csv = odfail_cli("confusion", "-w", ws, "--run", "r", "-f", "csv").stdout
    assert csv.splitlines()[0] == "actual,cat,dog,background"
    # --var sets the views' thresholds: with bg 0.35, p5 (IoU 0.3 with A) no longer overlaps anything -> Bkg
    res = odfail_cli("sql", "-w", ws, "--var", "bg_threshold=0.35", "-f", "csv",
                     "select error_type from prediction_errors where pred_id = 5")
    assert res.stdout.splitlines() == ["error_type", "Bkg"], res.stderr


@pytest.mark.parametrize("command", ["errors", "confusion"])
def test_unsupported_iou_type_is_refused_before_any_matching(every_type, command):
    ws, _, _ = every_type
    res = odfail_cli(command, "-w", ws, "--run", "r", "--iou-type", "keypoints")
    assert res.returncode == 2 and res.stderr.strip() == "error: --iou-type keypoints: expected bbox or segm"
    assert Workspace(ws).sql("select count(*) n from tide_matches where iou_type = 'keypoints'")["n"][0] == 0


def test_readme_error_queries_run(every_type):
    """The SQL examples of the README's error section."""
    ws, _, _ = every_type
    errors(ws, "r")
    view = Workspace(ws)
    top = view.sql("""select e.pred_id, e.score, p.name as predicted, a.name as actual
                      from errors e join categories p on p.category_id = e.category_id
                      join categories a on a.category_id = e.gt_category_id
                      where e.error_type = 'Cls' order by e.score desc limit 20""")
    assert top.rows() == [(3, 0.7, "cat", "dog")]
    by_size = view.sql("""select case when g.area < 32 * 32 then 'small' when g.area < 96 * 96 then 'medium'
                                      else 'large' end as size, count(*) as n
                          from errors e join gt g on g.gt_id = e.gt_id
                          join categories c on c.category_id = e.category_id
                          where e.error_type = 'Loc' and c.name = $name group by size""", name="cat")
    assert by_size.rows() == [("small", 1)]
    dupes = view.sql("""select n_dupes, count(*) as objects from (
        select error_gt, count(*) as n_dupes from prediction_errors where error_type = 'Dupe' group by 1)
        group by 1 order by 1""")
    assert dupes.rows() == [(1, 1)]
    missed = view.sql("""select c.name, count(*) filter (where g.area < 32*32) as small, count(*) as missed
        from gt_errors g join categories c using (category_id) where g.status = 'Miss' group by 1 order by 3 desc""")
    assert missed.rows() == [("dog", 1, 1)]


def test_run_without_predictions_misses_every_gt(every_type, tmp_path):
    """A run with no predictions has no tidecv matches at all; its GT are still all Miss in the views."""
    ws, _, _ = every_type
    ingest(ws, predictions=[(write_json(tmp_path / "none.json", []), "none")])
    result = errors(ws, "none")
    assert result.counts == {**dict.fromkeys(TYPES, 0), "Miss": 4} and result.ap == 0.0
    view = Workspace(ws)
    assert view.sql("select status, count(*) n from gt_errors where run = 'none' group by 1").rows() == [("Miss", 4)]
    assert view.sql("select count(*) n from errors where run = 'none' and error_type = 'Miss'")["n"][0] == 4
    np.testing.assert_array_equal(confusion(ws, "none").matrix, [[0, 0, 2], [0, 0, 2], [0, 0, 0]])
