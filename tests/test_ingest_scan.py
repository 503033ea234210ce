"""Ingest's fast path (numba scanner, odfail.ingest_scan) against DuckDB's path (odfail.ingest_checks): the same
tables from the same files, or the same error, on real files and on thousands of mutated records."""

from __future__ import annotations

import importlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from odfail import InputError, Workspace, ingest
from odfail.ingest import scan as ingest_scan
from odfail.synth import generate
from tests.conftest import shared
from tests.test_ingest import PAIRS

ingest_module = importlib.import_module("odfail.ingest.coco")
TABLES = {"images": "image_id", "categories": "category_id", "gt": "gt_id", "predictions": "pred_id"}


def _slow_only(monkeypatch) -> None:
    monkeypatch.setattr(ingest_module, "scan_instances", lambda mapped: None)
    monkeypatch.setattr(ingest_module, "scan_results", lambda mapped: None)


def _fast_used(monkeypatch) -> dict[str, bool]:
    """Record whether the fast path produced the GT tables and the predictions table."""
    used = {"gt": False, "predictions": False}
    tables, table = ingest_scan.instances_tables, ingest_scan.results_table

    def tables_spy(*args):
        out = tables(*args)
        used["gt"] |= out is not None
        return out

    def table_spy(*args):
        out = table(*args)
        used["predictions"] |= out is not None
        return out

    monkeypatch.setattr(ingest_module, "instances_tables", tables_spy)
    monkeypatch.setattr(ingest_module, "results_table", table_spy)
    return used


def _stored(ws_path: Path) -> dict[str, list[dict]]:
    """Every stored row, in stored order, segmentations parsed (the two paths print numbers differently)."""
    ws = Workspace(ws_path)
    out = {}
    for table in TABLES:
        rows = ws.sql(f"select * from {table}").rows(named=True)
        for row in rows:
            if row.get("segmentation") is not None:
                row["segmentation"] = json.loads(row["segmentation"])
        out[table] = rows
    return out


def _outcome(tmp_path: Path, name: str, gt: Path, preds: Path) -> dict | str:
    try:
        ingest(tmp_path / name, gt=gt, predictions=[(preds, "r")])
    except InputError as e:
        return f"InputError: {e}"
    return _stored(tmp_path / name)


@pytest.mark.parametrize("gt_rel,dt_rel", PAIRS, ids=[p[1] for p in PAIRS])
def test_fast_path_stores_what_duckdb_stores_on_shared_data(tmp_path, monkeypatch, gt_rel, dt_rel):
    """Every real file of ../shared/data goes through the scanner and yields exactly DuckDB's rows: ids, stored
    order, class ranks, every float bit, nulls, segmentations."""
    used = _fast_used(monkeypatch)
    fast = _outcome(tmp_path, "fast", shared(gt_rel), shared(dt_rel))
    assert used == {"gt": True, "predictions": True}
    monkeypatch.undo()
    _slow_only(monkeypatch)
    slow = _outcome(tmp_path, "slow", shared(gt_rel), shared(dt_rel))
    assert fast == slow


def test_fast_path_stores_what_duckdb_stores_on_generated_masks(tmp_path, monkeypatch):
    """A generated set with polygons, crowd RLE GT and compressed-RLE results."""
    generate(tmp_path / "data", images=30, seed=3, masks=True)
    gt, preds = tmp_path / "data" / "gt.json", tmp_path / "data" / "predictions.json"
    used = _fast_used(monkeypatch)
    fast = _outcome(tmp_path, "fast", gt, preds)
    assert used == {"gt": True, "predictions": True}
    monkeypatch.undo()
    _slow_only(monkeypatch)
    assert fast == _outcome(tmp_path, "slow", gt, preds)


@pytest.mark.parametrize("style", [{"separators": (",", ":")}, {}, {"indent": 1}],
                         ids=["compact", "spaced", "indented"])
def test_fast_path_stores_segmentations_as_written_without_white_space(tmp_path, monkeypatch, style):
    """The scanner stores a segmentation's text as the file writes it, white space removed (its numbers as
    written: `12345.50` stays so): for polygons it knows from its own scan whether there was any to remove."""
    generate(tmp_path / "data", images=8, seed=5, masks=True)
    docs = {name: json.loads((tmp_path / "data" / f"{name}.json").read_text()) for name in ("gt", "predictions")}
    docs["gt"]["annotations"][0]["segmentation"] = [[12345.5, 2, 30, 2.0, 30, 30], [5, 5, 9, 5, 9, 9]]
    paths = {name: tmp_path / f"{name}.json" for name in docs}
    for name, doc in docs.items():
        text = json.dumps(doc, **style)
        paths[name].write_text(text.replace("12345.5", "12345.50"))  # a number json.dumps would not write
    used = _fast_used(monkeypatch)
    ingest(tmp_path / "ws", gt=paths["gt"], predictions=[(paths["predictions"], "r")])
    assert used == {"gt": True, "predictions": True}
    ws = Workspace(tmp_path / "ws")
    for table, key, records in (("gt", "gt_id", docs["gt"]["annotations"]), ("predictions", "pred_id", None)):
        stored = ws.sql(f"select {key} as k, segmentation::VARCHAR as s from {table} order by {key}").rows()
        if records is None:
            records = [dict(d, id=j + 1) for j, d in enumerate(docs["predictions"])]
        expected = {r["id"]: json.dumps(r["segmentation"], separators=(",", ":")) for r in records}
        expected[docs["gt"]["annotations"][0]["id"]] = "[[12345.50,2,30,2.0,30,30],[5,5,9,5,9,9]]"
        assert {k: s for k, s in stored} == {k: expected[k] for k, _ in stored}


def test_slow_numbers_are_parsed_exactly():
    """Numbers past the scanner's one-operation fast path (17 significant digits, big exponents) come out as
    Python's correctly rounded float() says."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(300), rng.random(300) * 1e-300, rng.random(300) * 1e300,
                             rng.standard_normal(300) * 1e5])
    texts = [repr(float(v)) for v in values] + ["123456789012345678901234567890", "0.1e-400", "5e-324",
                                                 "1.7976931348623157e308", "-0.0", "9007199254740993"]
    records = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "@"}] * len(texts)
    doc = json.dumps(records)
    for t in texts:
        doc = doc.replace('"@"', t, 1)
    path = Path(__import__("tempfile").mkdtemp()) / "r.json"
    path.write_text(doc)
    scanned = ingest_scan.scan_results(ingest_scan.Mapped.open(path))
    assert scanned is not None
    try:
        assert [float(v) for v in scanned.fl[4]] == [float(t) for t in texts]
        assert [str(np.signbit(v)) for v in scanned.fl[4]] == [str(np.signbit(float(t))) for t in texts]
    finally:
        scanned.close()


# Field mutations: each puts one odd value into one field of one record (or removes the field); many are errors,
# some are fine. The scanner must either leave the file to DuckDB or store exactly what DuckDB stores.
_VALUES = [None, "7", 7.5, -1, 0, 1.0, 2 ** 63, -(2 ** 63), 2 ** 64, True, False, [], {}, [1, 2, 3], [1, 2, 3, 4],
           [0, 0, -1, 2], [0, 0, 2, -1], [1e400, 0, 1, 1], [1, "2", 3, 4], [[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5]],
           [[1, 2, 3, 4, 5, 6, 7]], [[1, 2, 3, 4, 5, 6], []], [[1, 2, 3, 4, 5, 1e999]],
           {"size": [80, 100], "counts": "0k"}, {"size": [80, 100], "counts": "0z"}, {"size": [80, 99], "counts": ""},
           {"size": [80, 100], "counts": [8000]}, {"size": [80, 100], "counts": [1, 2]}, {"counts": "00"},
           {"size": [80, 100], "counts": "a\\b"}, {"size": [80, 100], "counts": "0P"}, "é", "\u2603", "\\\"",
           1e-7, 0.30000000000000004, -0.0, 1e22, 1e23, 123456789012345678, 1e400, 2147483648, 640.0, 0.5]
_REMOVE = object()
_FIELDS = {"images": ["id", "file_name", "width", "height", "extra"],
           "categories": ["id", "name", "supercategory", "Name"],
           "annotations": ["id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "ID"],
           "preds": ["image_id", "category_id", "bbox", "score", "segmentation", "id", "area", "Score"]}


def _mutations(gt: dict, preds: list):
    """(name, gt, preds) for every section, field and value, on the section's second record."""
    for where, fields in _FIELDS.items():
        for field in fields:
            for value in (_REMOVE, *_VALUES):
                g, p = json.loads(json.dumps(gt)), json.loads(json.dumps(preds))
                rec = (p if where == "preds" else g[where])[1]
                if value is _REMOVE:
                    rec.pop(field, None)
                else:
                    rec[field] = value
                yield f"{where}.{field}={'removed' if value is _REMOVE else json.dumps(value)}", g, p


def _dump(doc, path: Path, rng: random.Random) -> Path:
    """JSON as files write it: compact, spaced or indented; sometimes with escaped non-ASCII."""
    style = rng.choice([{"separators": (",", ":")}, {}, {"indent": 1}])
    path.write_text(json.dumps(doc, ensure_ascii=rng.random() < 0.5, **style), encoding="utf-8")
    return path


def _staged(con, stage: Path, gt: Path | None, preds: Path | None, ws_path: Path) -> dict | str:
    """What ingest would store (its staging step alone: no workspace, no catalog), rows in stored order."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    runs = [(preds, "r")] if preds else []
    with ThreadPoolExecutor(1) as pool:
        try:
            ingest_module._load_all(con, gt, runs, stage, ws_path, ingest_module._start_scans(pool, gt, runs))
        except InputError as e:
            return f"InputError: {e}"
    out = {}
    for f in sorted(stage.glob("*.parquet")):
        rows = con.execute(f"select * from read_parquet('{f}')").fetchall()
        out[f.stem] = [tuple(json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in r) for r in rows]
    return out


def test_fast_path_agrees_with_duckdb_on_every_odd_field(tmp_path, monkeypatch, tiny_gt, tiny_preds):
    """Every odd value in every field of every kind of record: when the scanner takes the file, it stores the
    same rows and values as DuckDB's path does. (When it leaves the file, DuckDB's path runs alone.)"""
    import duckdb

    rng = random.Random(7)
    tiny_preds = tiny_preds + [{"image_id": 2, "category_id": 1, "score": 0.5,
                                "segmentation": {"size": [80, 100], "counts": "0k0"}}]
    ingest(tmp_path / "base", gt=_dump(tiny_gt, tmp_path / "gt.json", rng))
    index = ingest_module._gt_index(duckdb.connect(), f"read_parquet('{tmp_path / 'base' / 'images.parquet'}')",
                                    f"read_parquet('{tmp_path / 'base' / 'categories.parquet'}')")
    con = duckdb.connect()
    taken = compared = 0
    for case, (name, gt, preds) in enumerate(_mutations(tiny_gt, tiny_preds)):
        if name.startswith("preds"):
            path = _dump(preds, tmp_path / f"p{case}.json", rng)
            scanned = ingest_scan.scan_results(ingest_scan.Mapped.open(path))
            fast = scanned is not None and ingest_scan.results_table(scanned, "r", index) is not None
            if scanned is not None:
                scanned.close()
            args = (None, path, tmp_path / "base")
        else:
            path = _dump(gt, tmp_path / f"g{case}.json", rng)
            scanned = ingest_scan.scan_instances(ingest_scan.Mapped.open(path))
            fast = (scanned is not None
                    and ingest_scan.instances_tables(scanned, ingest_scan.instances_index(scanned)) is not None)
            if scanned is not None:
                scanned.close()
            args = (path, None, tmp_path)
        if not fast:
            continue
        taken += 1
        staged_fast = _staged(con, tmp_path / "stage", *args)
        with monkeypatch.context() as m:
            _slow_only(m)
            staged_slow = _staged(con, tmp_path / "stage", *args)
        assert staged_fast == staged_slow, name
        compared += 1
    assert taken > 100  # the scanner does take the harmless cases


@pytest.mark.parametrize("extra", [None, "a},{b", "long-numbers"],
                         ids=["plain", "record-like-bytes-in-a-string", "numbers-the-scanner-leaves"])
def test_results_scanned_in_parts_and_chunks_equal_one_scan(tmp_path, monkeypatch, extra):
    """A results file scanned in parts on several threads, each part a few records at a time (its pages given
    back as it goes), gives the rows of one sequential scan: also when a guessed part boundary falls inside a
    string value (the scan of the part before catches it), and with numbers parsed after each chunk."""
    generate(tmp_path, images=20, seed=5, masks=True)
    path = tmp_path / "predictions.json"
    records = json.loads(path.read_text())
    for r in records[::3]:  # results without a mask among those with one
        del r["segmentation"]
    for r in records if extra == "a},{b" else []:
        r["note"] = extra
    text = json.dumps(records)
    if extra == "long-numbers":  # 20+ significant digits: left by the scanner, parsed exactly after each chunk
        text = re.sub(r'("score": )([0-9.]+)', r"\g<1>\g<2>00000000000000000007", text)
        assert "00000000000000000007" in text
    path.write_text(text)

    def scan(parts):
        scanned = ingest_scan.scan_results(ingest_scan.Mapped.open(path), parts=parts)
        try:
            return scanned.ids.copy(), scanned.fl.copy(), scanned.segs.copy()
        finally:
            scanned.close()

    one = scan(1)
    monkeypatch.setattr(ingest_scan, "_PART_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_scan, "_SCAN_CHUNK", 700)
    parts = scan(5)
    records = json.loads(path.read_text())
    assert one[0].shape[1] == len(records) and 0 < one[2].shape[1] == sum("segmentation" in r for r in records)
    assert one[1][4].tolist() == [r["score"] for r in records]
    for a, b in zip(one, parts, strict=True):
        np.testing.assert_array_equal(a, b)


def test_results_left_to_duckdb_wait_for_the_gt_check_tables(tmp_path, monkeypatch, tiny_gt):
    """The fast path publishes the GT's index before it writes the check tables DuckDB's path reads; a results
    file left to DuckDB (an empty list) must wait for the tables, not the index. (A random case of the slow
    suite hit this race: `images_chk` did not exist yet.) The GT's tables are delayed here to make it certain."""
    import time

    tables = ingest_module.instances_tables

    def slow_tables(*args):
        time.sleep(0.5)
        return tables(*args)

    monkeypatch.setattr(ingest_module, "instances_tables", slow_tables)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(tiny_gt))
    preds = tmp_path / "empty.json"
    preds.write_text("[]")
    summary = ingest(tmp_path / "ws", gt=gt, predictions=[(preds, "none")])
    assert summary.runs == {"none": 0} and summary.gt == len(tiny_gt["annotations"])


def test_row_groups_made_ahead_of_the_writer_arrive_in_order_and_their_errors_reach_it():
    """ingest._ahead makes each row group on a helper thread while the writer writes the one before: items come
    in order, a failure while making one is raised where the writer asks for it (not lost on the helper), and a
    writer that stops early (a full disk) does not leave the helper blocked."""
    ahead = ingest_module._ahead
    assert list(ahead(iter(range(5)))) == [0, 1, 2, 3, 4]
    assert list(ahead(iter([]))) == []

    def failing():
        yield "first"
        raise OSError("no space left on device")

    got = []
    with pytest.raises(OSError, match="no space left"):
        for item in ahead(failing()):
            got.append(item)
    assert got == ["first"]
    made = []

    def counted():
        for i in range(100):
            made.append(i)
            yield i

    stream = ahead(counted())
    assert next(stream) == 0
    stream.close()  # the writer gives up after one row group: the helper makes at most the next one
    assert made in ([0], [0, 1])
