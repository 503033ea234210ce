"""Ingest: real files from ../shared/data, every bad-input case through the real CLI, and odd-but-valid input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from odfail import InputError, Workspace, WorkspaceError, ingest
from tests.conftest import odfail_cli, shared, write_json

GT_FILES = [
    "cocoapi-val2014-100/instances_val2014_100.json",
    "padilla-val2014-100-nocrowd/sampled_gts_bbox_area.json",
    "torchmetrics-4img/gt.json",
    "fce-val2017-2299-crowd/gt_ignore_test_intids.json",
    "fce-shapes-segm/gt_dataset.json",
    "detectron2-val2017-mini/gt.json",
]
COCOAPI = "cocoapi-val2014-100/instances_val2014_100.json"
PAIRS = [  # (gt, results): every results file in ../shared/data with its GT
    (COCOAPI, "cocoapi-val2014-100/instances_val2014_fakebbox100_results.json"),
    (COCOAPI, "cocoapi-val2014-100/instances_val2014_fakesegm100_results.json"),
    ("padilla-val2014-100-nocrowd/sampled_gts_bbox_area.json", "padilla-val2014-100-nocrowd/detections_list.json"),
    ("torchmetrics-4img/gt.json", "torchmetrics-4img/dt.json"),
    ("fce-val2017-2299-crowd/gt_ignore_test_intids.json", "fce-val2017-2299-crowd/dt_ignore_test.json"),
    ("fce-shapes-segm/gt_dataset.json", "fce-shapes-segm/dt_dataset.json"),
    ("fce-shapes-segm/gt_dataset.json", "fce-shapes-segm/dt_dataset_rle_nobbox.json"),
    ("detectron2-val2017-mini/gt.json", "detectron2-val2017-mini/dt.json"),
]


def _tree_digest(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("gt_rel,dt_rel", PAIRS, ids=[p[1] for p in PAIRS])
def test_shared_data_counts_equal_the_files(tmp_path, gt_rel, dt_rel):
    """Every GT and results file of ../shared/data ingests and the views hold exactly what the files hold."""
    gt_doc = json.loads(shared(gt_rel).read_text())
    dt_doc = json.loads(shared(dt_rel).read_text())
    ingest(tmp_path / "ws", gt=shared(gt_rel), predictions=[(shared(dt_rel), "r")])
    ws = Workspace(tmp_path / "ws")
    counts = ws.sql("""select (select count(*) from images) i, (select count(*) from categories) c,
                              (select count(*) from gt) g, (select count(*) filter (iscrowd) from gt) crowd,
                              (select count(*) from predictions) p""").row(0)
    crowd = sum(1 for a in gt_doc["annotations"] if a.get("iscrowd"))
    assert counts == (len(gt_doc["images"]), len(gt_doc["categories"]), len(gt_doc["annotations"]), crowd,
                      len(dt_doc))
    names = ws.sql("select category_id, name, supercategory from categories order by category_id").rows()
    assert names == sorted((c["id"], c.get("name"), c.get("supercategory")) for c in gt_doc["categories"])
    files = ws.sql("select image_id, file_name from images order by image_id").rows()
    assert files == sorted((i["id"], i.get("file_name")) for i in gt_doc["images"])
    # loadRes rules: ids 1..N in file order, area = w*h where a bbox is given
    first = ws.sql("select pred_id, image_id, score, area from predictions order by pred_id limit 1").row(0)
    bb = dt_doc[0].get("bbox")
    assert first[:3] == (1, dt_doc[0]["image_id"], dt_doc[0]["score"])
    assert first[3] == (bb[2] * bb[3] if bb else None)


def test_catalog_opens_in_plain_duckdb(tmp_path):
    """The catalog file alone, opened by plain duckdb, shows the same views with the same rows."""
    ingest(tmp_path / "ws", gt=shared(GT_FILES[2]), predictions=[(shared("torchmetrics-4img/dt.json"), "tm")])
    con = duckdb.connect(str(tmp_path / "ws" / "catalog.duckdb"), read_only=True)
    views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert {"images", "categories", "gt", "runs", "predictions", "matches", "gt_matches"} <= views
    assert con.execute("select count(*) from predictions where run = 'tm'").fetchall()[0][0] == 11
    con.close()


def test_moved_workspace_rebinds_its_views(tmp_path):
    """Views hold absolute paths; opening a moved workspace with odfail rebuilds them."""
    ingest(tmp_path / "a", gt=shared(GT_FILES[2]))
    (tmp_path / "a").rename(tmp_path / "b")
    assert Workspace(tmp_path / "b").sql("select count(*) n from gt")["n"][0] == 11


def test_named_parameters_are_bound_not_formatted(tmp_path):
    """A value that would break string-formatted SQL is just a value."""
    ingest(tmp_path / "ws", gt=shared(GT_FILES[2]))
    ws = Workspace(tmp_path / "ws")
    assert ws.sql("select count(*) n from gt where area > $a", a=1000.0)["n"][0] == sum(
        1 for a in json.loads(shared(GT_FILES[2]).read_text())["annotations"] if a["area"] > 1000)
    assert ws.sql("select count(*) n from categories where name = $n", n="x' or '1'='1")["n"][0] == 0
    table = ws.arrow("select gt_id from gt where area > $a order by gt_id", a=1000.0)
    assert table.column("gt_id").to_pylist() == sorted(
        a["id"] for a in json.loads(shared(GT_FILES[2]).read_text())["annotations"] if a["area"] > 1000)


def test_reingesting_a_run_replaces_it_and_runs_coexist(tmp_path, tiny_gt, tiny_preds):
    gt = write_json(tmp_path / "gt.json", tiny_gt)
    a = write_json(tmp_path / "a.json", tiny_preds)
    b = write_json(tmp_path / "b.json", tiny_preds[:1])
    ingest(tmp_path / "ws", gt=gt, predictions=[(a, "one"), (a, "two")])
    ingest(tmp_path / "ws", predictions=[(b, "one")])
    ws = Workspace(tmp_path / "ws")
    rows = ws.sql("select run, count(*) n from predictions group by run order by run").rows()
    assert rows == [("one", 1), ("two", 3)]
    assert ws.sql("select run, predictions from runs order by run").rows() == [("one", 1), ("two", 3)]


def _bad_cases(tiny_gt, tiny_preds):
    """(name, gt doc or raw bytes, preds doc or raw bytes, expected substrings of the one-line error)."""
    p = tiny_preds
    one = lambda **kw: [{**p[0], **kw}]  # noqa: E731
    drop = lambda k: [{kk: vv for kk, vv in p[0].items() if kk != k}]  # noqa: E731
    g = tiny_gt
    return [
        ("malformed json", g, b'[{"image_id": 1,, }]', ["malformed JSON", "line 1"]),
        ("truncated", g, json.dumps(p).encode()[:-20], ["truncated"]),
        ("zero bytes", g, b"", ["file is empty"]),
        ("not utf8", g, b'[{"image_id": 1, "category_id": 1, "bbox": [1,2,3,4], "score": 0.5, "n": "\xe9"}]',
         ["not UTF-8", "offset"]),
        ("results dict", g, {"annotations": p}, ["top level is a JSON dict", "list"]),
        ("missing score", g, drop("score"), ["record 0", '"score"', "missing"]),
        ("missing image_id", g, drop("image_id"), ["record 0", '"image_id"', "missing"]),
        ("missing bbox and segmentation", g, drop("bbox"), ["record 0", '"bbox"', "missing"]),
        ("string image id", g, one(image_id="1"), ["record 0", '"image_id"', "must be an integer", '"1"']),
        ("float category id", g, one(category_id=1.5), ['"category_id"', "must be an integer"]),
        ("id beyond 64 bits", g, one(image_id=2**64 + 5), ['"image_id"', "does not fit in 64 bits"]),
        ("id beyond int64", g, one(image_id=2**63), ['"image_id"', "does not fit in 64 bits"]),
        ("negative width", g, one(bbox=[1, 2, -3, 4]), ['"bbox"', "width -3.0 is negative"]),
        ("negative height", g, one(bbox=[1, 2, 3, -4]), ['"bbox"', "height -4.0 is negative"]),
        ("nan coordinate", g, json.dumps(one(bbox=[1, float("nan"), 3, 4])).encode(), ['"bbox"', "NaN"]),
        ("infinite coordinate", g, json.dumps(one(bbox=[1, float("inf"), 3, 4])).encode(), ['"bbox"', "infinite"]),
        ("three numbers", g, one(bbox=[1, 2, 3]), ['"bbox"', "4 numbers"]),
        ("string coordinate", g, one(bbox=[1, "2", 3, 4]), ['"bbox"', "4 numbers"]),
        ("bbox not a list", g, one(bbox="1,2,3,4"), ['"bbox"', "must be a list"]),
        ("nan score", g, json.dumps(one(score=float("nan"))).encode(), ['"score"', "NaN"]),
        ("infinite score", g, json.dumps(one(score=float("-inf"))).encode(), ['"score"', "infinite"]),
        ("string score", g, one(score="0.5"), ['"score"', "must be a number"]),
        ("unknown image", g, p + one(image_id=77), ["record 3", '"image_id"', "77 is not in the ground truth"]),
        ("unknown category", g, one(category_id=9), ["record 0", '"category_id"', "9 is not in the ground truth"]),
        ("record not an object", g, p + [5], ["record 3", "must be an object"]),
        ("duplicate image id", {**g, "images": g["images"] + [g["images"][0]]}, p,
         ["images[2]", '"id"', "duplicate id 1", "images[0]"]),
        ("duplicate category id", {**g, "categories": g["categories"] + [g["categories"][1]]}, p,
         ["categories[2]", "duplicate id 2"]),
        ("duplicate annotation id", {**g, "annotations": g["annotations"] + [g["annotations"][0]]}, p,
         ["annotations[3]", "duplicate id 10"]),
        ("gt string id", {**g, "images": [{**g["images"][0], "id": "1"}] + g["images"][1:]}, p,
         ["images[0]", '"id"', "must be an integer"]),
        ("gt annotation of unknown image", {**g, "annotations": [{**g["annotations"][0], "image_id": 5}]}, p,
         ["annotations[0]", '"image_id"', "5 is not in the ground truth"]),
        ("gt negative width", {**g, "annotations": [{**g["annotations"][0], "bbox": [0, 0, -1, 2]}]}, p,
         ["annotations[0]", '"bbox"', "negative"]),
        ("gt without images", {"categories": g["categories"], "annotations": []}, p, ['"images"', "missing"]),
        ("gt is a list", b"[]", p, ["top level is a JSON list"]),
        ("gt nan area", json.dumps({**g, "annotations": [{**g["annotations"][0], "area": float("nan")}]}).encode(),
         p, ["annotations[0]", '"area"', "NaN"]),
        # masks (image 1 is 80 high, 100 wide)
        ("malformed rle string", g, one(segmentation={"size": [80, 100], "counts": "ab~c"}),
         ["record 0", '"segmentation"', "character outside '0'..'o'"]),
        ("truncated rle string", g, one(segmentation={"size": [80, 100], "counts": "0Pa"}),
         ["record 0", '"segmentation"', "truncated"]),
        ("polygon of two points", g, one(segmentation=[[1, 1, 5, 5]]),
         ["record 0", '"segmentation"', "at least 3 points", "[1.0, 1.0, 5.0, 5.0]"]),
        ("rle size not the image's", g, p[:1] + one(segmentation={"size": [100, 80], "counts": "PPYo1"}),
         ["record 1", '"segmentation"', "RLE size [100,80] is not image 1's [height, width] = [80, 100]"]),
        ("gt rle counts do not cover the image",
         {**g, "annotations": g["annotations"][:2] + [{**g["annotations"][2],
                                                       "segmentation": {"counts": [0, 40, 40], "size": [40, 40]}}]},
         p, ["annotations[2]", '"segmentation"', "RLE counts sum to 80, not height x width = 1600"]),
    ]


def _write(path: Path, doc) -> Path:
    path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return path


@pytest.mark.parametrize("case", range(39))
def test_bad_input_exits_2_with_one_line_and_leaves_workspace_unchanged(tmp_path, tiny_gt, tiny_preds, case):
    """Each bad file: exit code 2, one line naming file/record/field, no traceback, workspace byte-identical."""
    cases = _bad_cases(tiny_gt, tiny_preds)
    assert len(cases) == 39
    name, gt_doc, pred_doc, expected = cases[case]
    ws = tmp_path / "ws"
    good_gt = write_json(tmp_path / "good_gt.json", tiny_gt)
    ingest(ws, gt=good_gt, predictions=[(write_json(tmp_path / "good.json", tiny_preds), "base")])
    before = _tree_digest(ws)
    gt = _write(tmp_path / "gt.json", gt_doc)
    dt = _write(tmp_path / "dt.json", pred_doc)
    bad_file = gt if gt_doc is not tiny_gt else dt
    args = ["ingest", "-w", ws, "--pred", dt, "--run", "base"] + (["--gt", gt] if gt_doc is not tiny_gt else [])
    res = odfail_cli(*args)
    assert res.returncode == 2, (name, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"error: {bad_file}"), lines[0]
    for part in expected:
        assert part in lines[0], (name, lines[0])
    assert _tree_digest(ws) == before
    assert not list(tmp_path.glob(".odfail-staging-*")) and not list(ws.glob(".odfail-staging-*"))


def test_failed_first_ingest_creates_no_workspace(tmp_path):
    """A GT with string ids (faster_coco_eval's gt_ignore_test.json) is refused and nothing is created."""
    with pytest.raises(InputError, match=r'images\[0\], field "id": must be an integer, got the string "2299"'):
        ingest(tmp_path / "ws", gt=shared("fce-val2017-2299-crowd/gt_ignore_test.json"))
    assert not (tmp_path / "ws").exists()
    assert list(tmp_path.iterdir()) == []


def test_predictions_before_gt_are_refused(tmp_path, tiny_preds):
    with pytest.raises(WorkspaceError, match="no ground truth"):
        ingest(tmp_path / "ws", predictions=[(write_json(tmp_path / "p.json", tiny_preds), "r")])


def test_odd_but_meaningful_input_is_accepted_and_noted(tmp_path, tiny_gt, tiny_preds):
    """Zero-size boxes, negative scores, an empty run, GT without optional fields: stored, and `info` says so."""
    gt = json.loads(json.dumps(tiny_gt))
    del gt["images"][0]["width"], gt["images"][0]["height"], gt["images"][0]["file_name"]
    del gt["annotations"][0]["area"], gt["annotations"][1]["iscrowd"], gt["categories"][0]["supercategory"]
    gt["annotations"][1]["bbox"] = [50, 50, 0, 10]
    preds = [{**tiny_preds[0], "bbox": [1, 1, 0, 5], "score": -2.5}] + tiny_preds[1:]
    ingest(tmp_path / "ws", gt=write_json(tmp_path / "gt.json", gt),
           predictions=[(write_json(tmp_path / "p.json", preds), "odd"),
                        (write_json(tmp_path / "e.json", []), "empty")])
    ws = Workspace(tmp_path / "ws")
    assert ws.sql("select width, file_name from images where image_id = 1").row(0) == (None, None)
    assert ws.sql("select area from gt where gt_id = 10").row(0) == (None,)
    assert ws.sql("select iscrowd from gt where gt_id = 11").row(0) == (None,)
    info = str(ws.info())
    for note in ["1 images have no width/height", "1 categories have no supercategory",
                 "1 GT annotations have no area", "1 GT annotations have no iscrowd",
                 "1 GT boxes have zero width or height", "run 'empty' has no predictions",
                 "run 'odd': 1 predictions have zero width or height",
                 "run 'odd': 1 predictions have negative scores"]:
        assert note in info, (note, info)


def test_cli_sql_formats(tmp_path, tiny_gt, tiny_preds):
    gt = write_json(tmp_path / "gt.json", tiny_gt)
    assert odfail_cli("ingest", "-w", tmp_path / "ws", "--gt", gt, "--pred",
                      write_json(tmp_path / "p.json", tiny_preds)).returncode == 0
    q = "select pred_id, score from predictions where score > $s order by pred_id"
    res = odfail_cli("sql", "-w", tmp_path / "ws", q, "-p", "s=0.5", "--format", "json")
    assert json.loads(res.stdout) == [{"pred_id": 1, "score": 0.9}, {"pred_id": 3, "score": 0.7}]
    res = odfail_cli("sql", "-w", tmp_path / "ws", q, "-p", "s=0.5", "--format", "csv")
    assert res.stdout.split() == ["pred_id,score", "1,0.9", "3,0.7"]
    out = tmp_path / "o.parquet"
    assert odfail_cli("sql", "-w", tmp_path / "ws", q, "-p", "s=0.5", "-f", "parquet", "-o", out).returncode == 0
    assert duckdb.sql(f"select count(*) from '{out}'").fetchall()[0][0] == 2
    res = odfail_cli("sql", "-w", tmp_path / "ws", "select * from nope")
    assert res.returncode == 2 and res.stderr.startswith("error: SQL error")
    res = odfail_cli("info", "-w", tmp_path / "ws", "--format", "json")
    assert json.loads(res.stdout)["runs"][0] == {"run": "p", "predictions": 3, "source": str(tmp_path / "p.json"),
                                                 "analyses": []}


def test_workspace_of_another_format_is_refused_clearly(tmp_path, tiny_gt):
    ingest(tmp_path / "ws", gt=write_json(tmp_path / "gt.json", tiny_gt))
    (tmp_path / "ws" / ".odfail_format").write_text("1")
    res = odfail_cli("info", "-w", tmp_path / "ws")
    assert res.returncode == 2 and "workspace format 1" in res.stderr and "Traceback" not in res.stderr


def test_new_gt_drops_stale_match_tables_and_refuses_runs_it_does_not_fit(tmp_path, tiny_gt, tiny_preds):
    """Re-ingesting GT keeps the runs (re-checked against it) but drops their match tables, which described the
    old GT; a GT that lacks an image a run uses is refused, naming the run, and changes nothing."""
    from odfail.evaluate.coco import evaluate

    gt = write_json(tmp_path / "gt.json", tiny_gt)
    ingest(tmp_path / "ws", gt=gt, predictions=[(write_json(tmp_path / "p.json", tiny_preds), "r")])
    evaluate(tmp_path / "ws", "r")
    ws = Workspace(tmp_path / "ws")
    assert ws.sql("select count(*) n from matches")["n"][0] == 3
    ingest(tmp_path / "ws", gt=gt)
    assert ws.sql("select count(*) n from matches")["n"][0] == 0
    assert ws.sql("select count(*) n from match_pairs")["n"][0] == 0
    assert ws.sql("select count(*) n from predictions")["n"][0] == 3
    before = _tree_digest(tmp_path / "ws")
    smaller = {**tiny_gt, "images": tiny_gt["images"][:1],
               "annotations": [a for a in tiny_gt["annotations"] if a["image_id"] == 1]}
    with pytest.raises(InputError, match="run 'r' has predictions for image_id 2"):
        ingest(tmp_path / "ws", gt=write_json(tmp_path / "small.json", smaller))
    assert _tree_digest(tmp_path / "ws") == before


def test_api_functions_stay_functions_after_their_modules_are_imported():
    # `odfail.evaluate` etc. are lazily imported functions whose modules share their names; importing a
    # submodule binds the package attribute to the module, which once made a second `odfail.evaluate` the module.
    import subprocess
    import sys

    code = ("import odfail, types\n"
            "for name in ('ingest', 'evaluate', 'errors', 'confusion'):\n"
            "    first, second = getattr(odfail, name), getattr(odfail, name)\n"
            "    assert isinstance(first, types.FunctionType) and second is first, (name, second)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_staging_folder_of_a_killed_ingest_is_removed_by_the_next_one_and_a_live_ones_is_kept(
        tmp_path, tiny_gt, tiny_preds):
    """An ingest killed with SIGKILL leaves its staging folder (up to a gigabyte at 3M predictions); the next
    write to the workspace removes it, but never the folder of an ingest still running beside it."""
    import signal
    import subprocess
    import sys
    import time

    ws = tmp_path / "ws"
    ingest(ws, gt=write_json(tmp_path / "gt.json", tiny_gt))
    # a real killed writer: a process that stages a file the way ingest does, then is killed mid-way
    code = ("import sys, time\nfrom pathlib import Path\nfrom odfail.store.workspace import staging_folder\n"
            "f = staging_folder(Path(sys.argv[1]))\n(f / 'pred-r.parquet').write_bytes(b'x' * 1000)\n"
            "print(f, flush=True)\ntime.sleep(60)\n")
    killed = subprocess.Popen([sys.executable, "-c", code, str(ws)], stdout=subprocess.PIPE, text=True)
    dead_folder = Path(killed.stdout.readline().strip())
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    live = subprocess.Popen([sys.executable, "-c", code, str(ws)], stdout=subprocess.PIPE, text=True)
    try:
        live_folder = Path(live.stdout.readline().strip())
        beside = tmp_path / f".odfail-staging-{killed.pid}-beside"  # a new workspace's staging, in the parent
        beside.mkdir()
        foreign = ws / ".odfail-staging-notapid"  # not named by staging_folder: left alone
        foreign.mkdir()
        assert dead_folder.is_dir() and live_folder.is_dir()
        time.sleep(0.1)
        ingest(ws, predictions=[(write_json(tmp_path / "p.json", tiny_preds), "r")])
        assert not dead_folder.exists() and not beside.exists()
        assert live_folder.is_dir() and foreign.is_dir()
        assert Workspace(ws).sql("select count(*) as n from predictions")["n"][0] == len(tiny_preds)
    finally:
        live.kill()
        live.wait()
