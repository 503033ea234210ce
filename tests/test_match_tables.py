"""Match tables: a hand-computed case, invariant queries (zero rows) on real and generated data, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odfail import Workspace, ingest
from odfail.evaluate.coco import evaluate
from odfail.store.workspace import sql_dir
from odfail.synth import generate
from tests.conftest import odfail_cli, shared, write_json

CHECKS = sorted((sql_dir() / "queries").glob("check_*.sql"))


@pytest.fixture
def tiny_ws(tmp_path, tiny_gt, tiny_preds):
    ingest(tmp_path / "ws", gt=write_json(tmp_path / "gt.json", tiny_gt),
           predictions=[(write_json(tmp_path / "p.json", tiny_preds), "r")])
    return tmp_path / "ws"


def test_tiny_case_by_hand(tiny_ws):
    """pred 1 overlaps GT 10 by 19x19 of 20x20 boxes: IoU = 361 / (400 + 400 - 361) = 0.8223, so it matches
    at .50-.80 and not at .85+. pred 2 hits nothing of its class. pred 3 lies inside the crowd GT 12: crowd IoU
    = intersection / prediction area = 100 / 100 = 1, matched (and ignored) at every threshold."""
    result = evaluate(tiny_ws, "r")
    ws = Workspace(tiny_ws)
    m = {r["pred_id"]: r for r in ws.sql("select * from matches order by pred_id").to_dicts()}
    assert [m[1][f"gt_{t}"] for t in range(50, 100, 5)] == [10] * 7 + [None] * 3
    assert m[1]["iou_same"] == pytest.approx(361 / 439, abs=1e-15)
    assert m[2]["match_gt"] == [None] * 10 and m[2]["iou_same"] == 0 and m[2]["gt_same"] is None
    assert m[3]["match_gt"] == [12] * 10 and m[3]["iou_crowd"] == 1.0 and m[3]["iou_same"] == 0
    assert [m[i]["rank"] for i in (1, 2, 3)] == [0, 0, 0]
    outcome = dict(ws.sql("select pred_id, outcome from match_at_iou where iou_threshold = 0.5").rows())
    assert outcome == {1: "TP", 2: "FP", 3: "ignored"}
    g = {r["gt_id"]: r for r in ws.sql("select * from gt_matches").to_dicts()}
    assert g[10]["pred_50"] == 1 and g[10]["pred_85"] is None and g[10]["iou_best"] == pytest.approx(361 / 439)
    assert g[11]["match_pred"] == [None] * 10 and g[11]["pred_best"] is None
    assert g[12]["ignored"] and g[12]["pred_50"] == 3
    # headline at .5: TP pred 1, FP pred 2, GT 11 missed; crowd neither. AP50: cat 1 = 1, cat 2 = 0.
    h = result.at_iou
    assert (h.tp, h.fp, h.fn, h.precision, h.recall) == (1, 1, 1, 0.5, 0.5)
    # pycocotools' precision is tp / (tp + fp + eps): 1 / (1 + 2**-52) = 0.9999999999999998, hence not 0.5 exactly
    assert h.mAP == result.stats["AP50"] == np.mean([1 / (1 + 2.0**-52)] * 101 + [0.0] * 101)


def test_score_threshold_drops_predictions_from_counts(tiny_ws):
    from odfail.match.params import Params

    h = evaluate(tiny_ws, "r", Params(score=0.5), write_matches=False).at_iou
    assert (h.tp, h.fp, h.fn) == (1, 0, 1)  # pred 2 (score .4) is gone


def test_other_class_overlap_is_recorded(tmp_path, tiny_gt):
    """A dog predicted on the cat GT 10: same-class IoU 0, other-class IoU 1 with GT 10, category 1."""
    preds = [{"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.8}]
    ingest(tmp_path / "ws", gt=write_json(tmp_path / "gt.json", tiny_gt),
           predictions=[(write_json(tmp_path / "p.json", preds), "r")])
    evaluate(tmp_path / "ws", "r")
    row = Workspace(tmp_path / "ws").sql("select * from matches").to_dicts()[0]
    assert (row["iou_same"], row["iou_other"], row["gt_other"], row["category_other"], row["iou_any"]) == (
        0.0, 1.0, 10, 1, 1.0)


@pytest.mark.parametrize("folder,gt,dt", [
    ("cocoapi-val2014-100", "instances_val2014_100.json", "instances_val2014_fakebbox100_results.json"),
    ("fce-val2017-2299-crowd", "gt_ignore_test_intids.json", "dt_ignore_test.json"),
], ids=["cocoapi", "crowd-2299"])
def test_invariants_hold_on_real_sets(tmp_path, folder, gt, dt):
    ingest(tmp_path / "ws", gt=shared(folder, gt), predictions=[(shared(folder, dt), "r")])
    result = evaluate(tmp_path / "ws", "r")
    ws = Workspace(tmp_path / "ws")
    for check in CHECKS:
        assert ws.sql(check.read_text()).is_empty(), check.name
    # the match tables give the same TP/FP counts as the kernel's headline block
    counts = dict(ws.sql("select outcome, count(*) from match_at_iou where iou_threshold = 0.5 "
                         "group by outcome").rows())
    assert (counts.get("TP", 0), counts.get("FP", 0)) == (result.at_iou.tp, result.at_iou.fp)


def test_invariants_hold_on_generated_data(tmp_path):
    s = generate(tmp_path / "data", images=150, seed=3)
    ingest(tmp_path / "ws", gt=s.gt_path, predictions=[(s.pred_path, "a")])
    evaluate(tmp_path / "ws", "a")
    ws = Workspace(tmp_path / "ws")
    assert ws.sql("select count(*) n from matches")["n"][0] == s.predictions
    for check in CHECKS:
        assert ws.sql(check.read_text()).is_empty(), check.name


def test_cli_evaluate_json_and_bad_options(tmp_path):
    folder = "torchmetrics-4img"
    ws = tmp_path / "ws"
    assert odfail_cli("ingest", "-w", ws, "--gt", shared(folder, "gt.json"), "--pred", shared(folder, "dt.json"),
                      "--run", "tm").returncode == 0
    res = odfail_cli("evaluate", "-w", ws, "--run", "tm", "--format", "json", "--area-range", "tiny=0:100")
    doc = json.loads(res.stdout)
    assert set(doc) >= {"run", "iou_type", "coco", "at_iou"}
    assert {"AP", "AP50", "AP75", "AR1", "AR10", "AR100", "AP_tiny", "AR_tiny"} <= set(doc["coco"])
    assert set(doc["at_iou"]) >= {"iou", "mAP", "mAR", "precision", "recall", "f1", "tp", "fp", "fn"}
    res = odfail_cli("evaluate", "-w", ws, "--run", "nope")
    assert res.returncode == 2 and res.stderr.strip() == f"error: no run 'nope' in {ws} (runs: tm)"
    res = odfail_cli("evaluate", "-w", ws, "--run", "tm", "--format", "json")
    assert json.loads(res.stdout)["coco"]["AP"] == pytest.approx(0.7060198019801981, abs=1e-12)
    table = odfail_cli("evaluate", "-w", ws, "--run", "tm", "--per-class").stdout
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.706" in table


def test_kernel_preloading_falls_back_to_numbas_own_loading_when_its_cache_looks_different():
    """`_numba.load_cached` reads numba's undocumented cache index; with a numba whose cache differs it must load
    nothing and leave each kernel to load or compile on its first call, which still answers."""
    import numpy as np

    from odfail._numba import load_cached
    from odfail.match import _rle

    kernel = _rle.areas_and_boxes

    class OtherCache:  # a cache object without the attributes this numba has
        pass

    saved = kernel._cache
    kernel._cache = OtherCache()
    try:
        assert load_cached(kernel) == 0
    finally:
        kernel._cache = saved
    area, box = kernel(np.array([5, 3, 8, 0, 16], dtype=np.uint32), np.array([0, 3, 5], dtype=np.int64),
                       np.array([4, 4]), np.array([4, 4]))
    # 4x4, column-major: 5 zeros (column 0 and one pixel) then 3 ones = column 1, rows 1-3; then a full mask
    assert area.tolist() == [3, 16] and box.tolist() == [[1.0, 1.0, 1.0, 3.0], [0.0, 0.0, 4.0, 4.0]]


def test_columns_fetched_one_by_one_line_up_like_one_query_of_them_all(tmp_path):
    # match._columns runs one query per column; the rows must line up across queries (2.5M rows: several row
    # groups and both threads) even on a connection told not to keep the order, and an empty source must give
    # empty columns
    import duckdb

    from odfail.match.coco import _columns

    con = duckdb.connect()
    tmp_parquet = tmp_path / "t.parquet"
    con.execute("copy (select i as a, i % 3 = 0 as b, (i * 0.5)::DOUBLE as c, (i * 7919 % 1000003) as d "
                f"from range(2500000) t(i)) to '{tmp_parquet}' (format parquet, row_group_size 100000)")
    for where in ("", " where a < 0"):
        source = f"(select * from read_parquet('{tmp_parquet}'){where})"
        exprs = {"a": "a", "b": "b", "c": "c", "d": "d", "sum": "a + d"}
        con.execute("set preserve_insertion_order = false")
        got = _columns(con, source, exprs)
        want = con.sql("select " + ", ".join(f"{e} as {k}" for k, e in exprs.items()) + f" from {source}"
                       ).fetchnumpy()
        assert list(got) == list(exprs)
        for k in exprs:
            assert got[k].flags.c_contiguous and np.array_equal(got[k], np.asarray(want[k])), (where, k)
        assert len(got["a"]) == (0 if where else 2_500_000)


def test_evaluate_works_while_a_duckdb_session_holds_the_catalog_for_writing(tiny_ws):
    # Evaluation reads and writes only Parquet: Workspace.engine shares the catalog's DuckDB instance when it
    # opens and falls back to an in-memory one when another process holds the catalog for writing (a DuckDB
    # CLI session on it, say). The views still need the catalog: `errors` then says so in one line.
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"con = duckdb.connect({str(tiny_ws / 'catalog.duckdb')!r})\n"
                               "print('held', flush=True)\n"
                               "sys.stdin.read()\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = odfail_cli("evaluate", "-w", tiny_ws, "--run", "r", "--format", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["at_iou"]["tp"] == 1  # as in the hand-computed case above
        res = odfail_cli("errors", "-w", tiny_ws, "--run", "r")
        assert res.returncode == 2 and res.stderr.startswith("error: cannot open ") and "lock" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    finally:
        holder.communicate("")
    assert Workspace(tiny_ws).sql("select count(*) n from matches")["n"][0] == 3


def test_index_finds_values_in_sorted_ids_on_the_dense_table_path_and_the_search_path():
    # _ids.index / indexer: a dense lookup table for small non-negative ids, a binary search otherwise;
    # values absent from the ids (negative, past the largest id, between ids) must come back as not found
    from odfail._ids import index

    rng = np.random.default_rng(1)
    for _ in range(300):
        big = rng.random() < 0.3  # ids up to 2**40: the binary-search path
        ids = np.unique(rng.integers(-5 if rng.random() < 0.2 else 0, 1 << 40 if big else 1000,
                                     rng.integers(0, 50)))
        values = rng.integers(-10, 1 << 40 if big else 1200, rng.integers(0, 200))
        if len(ids):
            values = np.concatenate([values, rng.choice(ids, 20)])
        pos, found = index(ids, values)
        known = {int(i): k for k, i in enumerate(ids)}
        assert found.tolist() == [int(v) in known for v in values]
        assert [int(p) for p, f in zip(pos, found) if f] == [known[int(v)] for v, f in zip(values, found) if f]
