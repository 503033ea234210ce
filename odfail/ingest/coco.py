"""COCO files -> validated, typed tables -> Parquet in a workspace.

Two readers, no per-record Python objects in either:

- the fast path (``odfail.ingest_scan``): a numba scanner over the memory-mapped file takes the common shape of
  COCO files strictly, and numpy checks what it read. It never explains an error: whenever anything is off, it
  leaves the file to
- DuckDB's path, which reads every field as raw JSON so that its JSON type can be checked (DuckDB's typed reader
  would silently turn ``"2299"`` into 2299 and ``1.5`` into 2, and we would rather say so than guess). One query
  per file validates and casts in the same pass; a column ``ok`` says whether a record passed every check; the
  first record that did not stops the ingest, and the detailed checks (``odfail.ingest_checks``) then name its
  first bad field.

Both store the same rows and values (tests compare them on real files and on every odd value of every field).

Rules borrowed from pycocotools (``COCO.loadRes``), applied to every results record:

- prediction ids are 1, 2, 3... in file order; an ``id`` in the file is ignored (loadRes overwrites it);
- a record with a non-empty ``bbox`` gets ``area = w * h``; one without gets the mask area (computed when masks
  are decoded); ``area`` and ``iscrowd`` in a results file are ignored (loadRes overwrites them);
- every result's ``image_id`` must be an image of the GT (loadRes asserts it). We also require a GT category.

Deliberate difference: pycocotools picks the bbox-or-mask rule from the *first* record only (and crashes on a later
record without a bbox); odfail applies it per record. On files where all records agree, the two are identical.

Lenient where pycocotools is: images may lack width/height/file_name; annotations may lack area, iscrowd,
segmentation; categories may lack supercategory (and name). Those stay null in the tables.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from odfail.exceptions import InputError, WorkspaceError
from odfail.ingest.checks import GT_SECTIONS, PRED_CHECKS, PRED_FIELDS, PRED_OK, all_ok, derived, first_problem
from odfail.ingest.scan import (
    Gathered,
    GtIndex,
    instances_index,
    instances_tables,
    results_table,
    scan_instances,
    scan_results,
    start_scan,
)
from odfail.store.workspace import (
    DERIVED,
    SCHEMAS,
    Workspace,
    check_run_name,
    quote,
    remove_dead_staging,
    staging_folder,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    import duckdb
    import pyarrow as pa

# Stored row order: GT and predictions in COCO evaluation order (see odfail.match), so that evaluation sorts
# nothing; pycocotools breaks score ties by file order, hence idx / pred_id last.
_STORED_ORDER = {"images": "idx", "categories": "idx", "gt": "category_id, image_id, idx",
                 "predictions": "category_id, image_id, score desc, pred_id"}
_GT_KEYS = {"images": "image_id", "categories": "category_id", "annotations": "gt_id"}
_ROW_GROUP = 122_880  # DuckDB's: the readers split work by row group
# Columns written without min/max statistics: in stored order (category, image, score) every row group spans
# nearly their whole range, so no filter could skip one, and computing them was ~15% of writing 3.25M results.
_NO_STATISTICS = ("x", "y", "w", "h", "score", "area", "segmentation")
@dataclass(frozen=True)
class IngestSummary:
    """What one `ingest` call stored."""

    workspace: Path
    images: int | None = None
    categories: int | None = None
    gt: int | None = None
    runs: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        parts = []
        if self.gt is not None:
            parts.append(f"GT: {self.images:,} images, {self.categories:,} categories, {self.gt:,} annotations")
        for run, n in self.runs.items():
            parts.append(f"run {run!r}: {n:,} predictions")
        return f"ingested into {self.workspace} in {self.seconds:.2f}s\n  " + "\n  ".join(parts)


def _record(section: str, idx: int) -> str:
    return f"{section}[{idx}]" if section else f"record {idx}"


def _check_ends(path: Path, closer: bytes) -> None:
    """DuckDB reads a truncated array (``[{...},`` then EOF) without complaint; the last byte tells."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read().rstrip()
    if not tail.endswith(closer):
        line = sum(1 for _ in open(path, "rb"))
        raise InputError(str(path), None, None, f"truncated: the file ends at line {line} before its closing "
                                                f"{closer.decode()!r}")


def _first_char(path: Path) -> str:
    """The first non-whitespace character, after the checks every file gets (exists, non-empty)."""
    if not path.is_file():
        raise InputError(str(path), None, None, "no such file")
    with open(path, "rb") as f:
        head = f.read(4096)
        while head and not head.strip():
            head = f.read(4096)
    stripped = head.lstrip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:].lstrip()
    if not stripped:
        raise InputError(str(path), None, None, "file is empty" if path.stat().st_size == 0
                         else "file holds only white space")
    return chr(stripped[0])


def _diagnose(path: Path, expect: type, duck_error: Exception) -> InputError:
    """Explain why DuckDB could not read a file: slow, exact, only on the error path."""
    name = str(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return InputError(name, None, None, f"not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start} "
                                            f"(line {line})")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return InputError(name, None, None, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}")
    if not isinstance(doc, expect):
        return InputError(name, None, None, f"top level is a JSON {type(doc).__name__}, expected "
                          + ("a list of result records" if expect is list else
                             "an object with images, annotations and categories"))
    sections = {"": doc} if expect is list else {k: doc.get(k) for k in GT_SECTIONS}
    for sec, items in sections.items():
        if items is None:
            continue
        if not isinstance(items, list):
            return InputError(name, None, sec, f"must be a list, got a JSON {type(items).__name__}")
        for i, rec in enumerate(items):
            if not isinstance(rec, dict):
                return InputError(name, _record(sec, i), None, f"must be an object, got {json.dumps(rec)[:40]}")
    return InputError(name, None, None, f"cannot be read: {str(duck_error).splitlines()[0]}")


def _raise_first_problem(con: duckdb.DuckDBPyConnection, table: str, source: str, checks: dict[str, str],
                         path: Path, section: str) -> None:
    """``table`` has the fast ``ok`` flag; on the first record without it, build that record's message from
    ``source`` (the raw JSON columns) with the detailed checks."""
    idx = con.execute(f"select min(idx) from {table} where not ok").fetchall()[0][0]
    if idx is None:
        return
    problem = con.execute(f"select {first_problem(checks)} from {source} where idx = $idx", {"idx": idx}).fetchall()
    if not problem or problem[0][0] is None:  # the two rule sets disagree: a bug, but still refuse the record
        raise InputError(str(path), _record(section, idx), None, "is not a valid record")
    fld, msg = problem[0][0].split("|", 1)
    raise InputError(str(path), _record(section, idx), fld, msg)


def _raise_duplicates(con, table: str, key: str, path: Path, section: str, field_name: str = "id") -> None:
    row = con.execute(f"""
        select idx, {key}, first_idx from (
            select idx, {key}, min(idx) over (partition by {key}) as first_idx,
                   row_number() over (partition by {key} order by idx) as k
            from {table})
        where k = 2 order by idx limit 1""").fetchall()
    if row:
        idx, key_value, first = row[0]
        raise InputError(str(path), _record(section, idx), field_name,
                         f"duplicate id {key_value} (first at {_record(section, first)})")


def _raise_dangling(con, table: str, col: str, ref_table: str, ref_col: str, path: Path, section: str,
                    what: str) -> None:
    row = con.execute(f"""
        select idx, {col} from {table} t
        where not exists (select 1 from {ref_table} r where r.{ref_col} = t.{col})
        order by idx limit 1""").fetchall()
    if row:
        idx, value = row[0]
        raise InputError(str(path), _record(section, idx), col, f"{what} {value} is not in the ground truth")


def _raise_mask_size(con, table: str, images: str, path: Path, section: str) -> None:
    """An RLE's size must be its image's [height, width] (where the GT gives them): pycocotools would compare
    masks of different sizes as IoU -1."""
    row = con.execute(f"""
        select t.idx, t.image_id, i.height, i.width, t.segmentation->'size'
        from {table} t join {images} i on i.image_id = t.image_id
        where json_type(t.segmentation) = 'OBJECT'
          and (try_cast(t.segmentation->'size'->>0 as BIGINT) is distinct from i.height
               or try_cast(t.segmentation->'size'->>1 as BIGINT) is distinct from i.width)
          and i.height is not null and i.width is not null
        order by t.idx limit 1""").fetchall()
    if row:
        idx, image_id, height, width, size = row[0]
        raise InputError(str(path), _record(section, idx), "segmentation",
                         f"RLE size {size} is not image {image_id}'s [height, width] = [{height}, {width}]")


def _read_gt(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Fill temp tables images/categories/gt (with idx and problem) from a COCO instances file."""
    import duckdb

    if _first_char(path) != "{":
        raise _diagnose(path, dict, ValueError("not an object"))
    _check_ends(path, b"}")
    columns = {sec: "STRUCT(" + ", ".join(f"{f} JSON" for f in spec["fields"]) + ")[]"
               for sec, spec in GT_SECTIONS.items()}
    size = os.path.getsize(path) + 1024
    try:
        con.execute(f"""create or replace table raw_gt as
            select * from read_json({quote(str(path))}, format = 'unstructured', records = true,
                                    maximum_object_size = {size}, columns = $columns)""",
                    {"columns": columns})
    except duckdb.Error as e:
        raise _diagnose(path, dict, e) from None
    if con.execute("select count(*) from raw_gt").fetchall()[0][0] != 1:
        raise InputError(str(path), None, None, "expected one JSON object (a COCO instances file)")
    present = con.execute("select images is not null, categories is not null from raw_gt").fetchall()[0]
    for sec, ok in zip(("images", "categories"), present):
        if not ok:
            raise InputError(str(path), None, sec, "is missing (a COCO instances file needs it)")
    # memory: each copy of the annotations is dropped as soon as the next one exists (at 440k GT each is
    # hundreds of MB)
    for sec, spec in GT_SECTIONS.items():
        con.execute(f"""create or replace table {spec['table']}_raw as
            select unnest(generate_series(0, len(coalesce({sec}, [])) - 1)) as idx,
                   unnest(coalesce({sec}, []), recursive := true)
            from raw_gt""")
    con.execute("drop table raw_gt")
    for sec, spec in GT_SECTIONS.items():
        source = derived(f"{spec['table']}_raw") if sec == "annotations" else f"{spec['table']}_raw"
        con.execute(f"""create or replace table {spec['table']}_chk as
            select idx, {all_ok(spec['ok'])} as ok, {spec['select']} from {source}""")
        _raise_first_problem(con, f"{spec['table']}_chk", source, spec["checks"], path, sec)
        con.execute(f"drop table {spec['table']}_raw")
        _raise_duplicates(con, f"{spec['table']}_chk", _GT_KEYS[sec], path, sec)
    _raise_dangling(con, "gt_chk", "image_id", "images_chk", "image_id", path, "annotations", "image_id")
    _raise_dangling(con, "gt_chk", "category_id", "categories_chk", "category_id", path, "annotations",
                    "category_id")
    _raise_mask_size(con, "gt_chk", "images_chk", path, "annotations")


def _read_predictions(con: duckdb.DuckDBPyConnection, path: Path, run: str, table: str) -> None:
    """Fill ``table`` from a COCO results file: typed columns, ``idx`` and ``problem``; raise on the first."""
    import duckdb

    if _first_char(path) != "[":
        raise _diagnose(path, list, ValueError("not a list"))
    _check_ends(path, b"]")
    columns = {f: "JSON" for f in PRED_FIELDS}
    source = derived(f"""(select ordinality - 1 as idx, *
                          from read_json({quote(str(path))}, format = 'array', columns = $columns) with ordinality)""")
    try:
        con.execute(f"""create or replace table {table} as
            select idx, {all_ok(PRED_OK)} as ok,
                   $run as run, idx + 1 as pred_id,
                   try_cast(image_id as BIGINT) as image_id, try_cast(category_id as BIGINT) as category_id,
                   bb[1] as x, bb[2] as y, bb[3] as w, bb[4] as h,
                   try_cast(score as DOUBLE) as score,
                   bb[3] * bb[4] as area,
                   segmentation
            from {source}""", {"columns": columns, "run": run})
        idx = con.execute(f"select min(idx) from {table} where not ok").fetchall()[0][0]
        if idx is not None:  # error path: read the file again for that record's message
            con.execute(f"create or replace temp table bad_record as select * from {source} where idx = $idx",
                        {"columns": columns, "idx": idx})
    except duckdb.Error as e:
        raise _diagnose(path, list, e) from None
    _raise_first_problem(con, table, "bad_record", PRED_CHECKS, path, "")


def _copy(con: duckdb.DuckDBPyConnection, table: str, source: str, out: Path) -> int:
    """Write a checked table to Parquet in its stored order; returns its row count."""
    cols = ", ".join(c.split()[0] for c in SCHEMAS[table].split(", "))
    con.execute(f"copy (select {cols} from {source} order by {_STORED_ORDER[table]}) to {quote(str(out))} "
                "(format parquet)")
    return con.execute(f"select count(*) from {source}").fetchall()[0][0]


def _gt_index(con: duckdb.DuckDBPyConnection, images: str, categories: str) -> GtIndex:
    """A GtIndex from GT tables DuckDB holds (the slow path's, or a workspace's Parquet)."""
    img = con.execute(f"select image_id, coalesce(height, -1) h, coalesce(width, -1) w from {images} "
                      "order by image_id").fetchnumpy()
    cat = con.execute(f"select category_id from {categories} order by category_id").fetchnumpy()
    return GtIndex(img["image_id"], img["h"], img["w"], cat["category_id"])


def _write_arrow(table: pa.Table | Gathered, out: Path) -> int:
    """Write a table that is already in stored order (the fast path's). Dictionary encoding only where values
    repeat (ids, names) and no compression: on float columns and JSON text it costs more time than it saves
    space (44k GT segmentations: 0.047 s -> 0.020 s, 9 MB -> 13 MB; at 440k 0.45 s -> 0.18 s).

    A `Gathered` table is written one row group at a time while a helper thread gathers the next (numba and
    the Parquet writer both release the GIL)."""
    import itertools

    import pyarrow.parquet as pq

    batches = _ahead(table.batches(_ROW_GROUP)) if isinstance(table, Gathered) else iter([table])
    first = next(batches)
    names = first.schema.names
    with pq.ParquetWriter(out, first.schema, compression="none",
                          use_dictionary=[c for c in ("run", "image_id", "category_id", "name", "supercategory")
                                          if c in names],
                          write_statistics=[c for c in names if c not in _NO_STATISTICS]) as writer:
        for batch in itertools.chain([first], batches):
            writer.write(batch, row_group_size=_ROW_GROUP)
    return table.num_rows


def _ahead(items: Iterator) -> Iterator:
    """``items``, each made on a helper thread while the caller uses the one before."""
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    with ThreadPoolExecutor(max_workers=1) as helper:
        coming = helper.submit(next, items, end)
        while (item := coming.result()) is not end:
            coming = helper.submit(next, items, end)
            yield item


def _start_scans(pool, gt: Path | None, predictions: list[tuple[Path, str]]) -> dict[str | None, Future]:
    """Each file's fast-path scan, running in ``pool``, by run name (None for the GT)."""
    return {run: start_scan(pool, path, scan) for run, path, scan in
            ([(None, gt, scan_instances)] if gt is not None else []) + [(r, p, scan_results) for p, r in predictions]}


def _load_all(con: duckdb.DuckDBPyConnection, gt: Path | None, predictions: list[tuple[Path, str]],
              stage: Path, ws_path: Path, scans: dict[str | None, Future]) -> dict[str, int]:
    """Check and stage every file, two at a time: the scanners and DuckDB release the GIL. A results file
    waits for the GT only for its id checks. The first error in argument order wins, so messages do not depend
    on timing. Returns row counts ("images", ..., "run:NAME").

    ``scans`` holds each file's fast-path scan (``odfail.ingest_scan``, started before DuckDB was imported), by
    run name (None for the GT); a
    file it leaves (None) is read by DuckDB with the checks of ``odfail.ingest_checks``, which name the first bad
    record and field."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    gt_ready, gt_failed = threading.Event(), threading.Event()  # the GT index is there / the GT failed
    gt_tables = threading.Event()  # images_chk / categories_chk exist (what DuckDB's results checks read)
    index: list[GtIndex] = []
    if gt is None:
        gt_ready.set()
        gt_tables.set()
        refs = {c: f"read_parquet({quote(str(ws_path / (c + '.parquet')))})" for c in ("images", "categories")}
        index.append(_gt_index(con, refs["images"], refs["categories"]))
    else:
        refs = {"images": "images_chk", "categories": "categories_chk"}

    def gt_task(cur) -> dict[str, int]:
        scanned = scans[None].result()
        try:
            if scanned is not None:  # the results files' checks may start now (see instances_index)
                index.append(instances_index(scanned))
                gt_ready.set()
            tables = instances_tables(scanned, index[0]) if scanned is not None else None
            if tables is None:
                _read_gt(cur, gt)
                gt_tables.set()
                if not index:
                    index.append(_gt_index(cur, "images_chk", "categories_chk"))
                    gt_ready.set()  # the GT passed its checks
                return {t: _copy(cur, t, f"{t}_chk", stage / f"{t}.parquet") for t in ("images", "categories", "gt")}
            scanned.drop_columns()  # the tables hold what they need
            # the id checks of runs already in the workspace read these (odfail.ingest._raise_dangling_run)
            cur.register("fast_images", tables["images"].select(["image_id", "width", "height"]))
            cur.register("fast_categories", tables["categories"].select(["category_id"]))
            cur.execute("create or replace table images_chk as from fast_images; "
                        "create or replace table categories_chk as from fast_categories")
            cur.unregister("fast_images")
            cur.unregister("fast_categories")
            gt_tables.set()
            return {t: _write_arrow(tables[t], stage / f"{t}.parquet") for t in ("images", "categories", "gt")}
        except BaseException:
            gt_failed.set()
            raise
        finally:
            tables = None
            gt_ready.set()
            gt_tables.set()
            if scanned is not None:
                scanned.close()

    def run_task(cur, i: int, path: Path, run: str) -> dict[str, int]:
        scanned = scans[run].result()

        def wait_gt() -> GtIndex | None:  # results_table builds the table first, then waits to check ids
            gt_ready.wait()
            return None if gt_failed.is_set() else index[0]

        try:
            if scanned is not None:
                table = results_table(scanned, run, wait_gt)
                if gt_failed.is_set():
                    return {}
                if table is not None:
                    return {f"run:{run}": _write_arrow(table, stage / f"pred-{run}.parquet")}
        finally:
            table = None
            if scanned is not None:
                scanned.close()
        table = f"pred_chk_{i}"
        _read_predictions(cur, path, run, table)
        gt_tables.wait()  # not only the index: the fast path sets that before it writes the check tables
        if gt_failed.is_set():
            return {}
        _raise_dangling(cur, table, "image_id", refs["images"], "image_id", path, "", "image_id")
        _raise_dangling(cur, table, "category_id", refs["categories"], "category_id", path, "", "category_id")
        _raise_mask_size(cur, table, refs["images"], path, "")
        # class_rank: pycocotools' accumulation order within a category (score, then image, then file order)
        ranked = (f"(select *, row_number() over (partition by category_id order by score desc, image_id, "
                  f"pred_id) - 1 as class_rank from {table})")
        return {f"run:{run}": _copy(cur, "predictions", ranked, stage / f"pred-{run}.parquet")}

    def on_cursor(fn, *args):
        cur = con.cursor()
        try:
            return fn(cur, *args)
        finally:
            cur.close()

    jobs = ([(gt_task,)] if gt is not None else []) + [
        (run_task, i, path, run) for i, (path, run) in enumerate(predictions)]
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(on_cursor, *job) for job in jobs]
        for f in futures:  # in argument order: the GT's error, if any, is raised first
            counts.update(f.result())
    return counts


def ingest(workspace: str | os.PathLike, gt: str | os.PathLike | None = None,
           predictions: list[tuple[str | os.PathLike, str]] | None = None,
           on_step: Callable[[str], None] | None = None) -> IngestSummary:
    """Validate COCO files and store them in a workspace, all or nothing.

    Args:
        workspace: the workspace directory; created when GT is given and it does not exist.
        gt: a COCO instances file (images, categories, annotations).
        predictions: (results file, run name) pairs; a run that exists is replaced.
        on_step: called with a short description of each step (for progress display).

    Raises:
        InputError: bad input; the workspace is left exactly as it was.

    Example:
        >>> ingest("ws", gt="gt.json", predictions=[("dt.json", "baseline")])  # doctest: +SKIP
    """
    import time

    t0 = time.perf_counter()
    predictions = [(Path(p), check_run_name(r)) for p, r in (predictions or [])]
    if len({r for _, r in predictions}) != len(predictions):
        raise WorkspaceError("each --pred needs its own run name")
    ws_path = Path(workspace).resolve()
    exists = (ws_path / "catalog.duckdb").exists()
    if gt is None and not exists:
        raise WorkspaceError(f"{ws_path} has no ground truth yet: ingest it first with --gt")
    ws = Workspace(ws_path) if exists else None
    if ws is not None and gt is None and not ws.has_gt:
        raise WorkspaceError(f"{ws_path} has no ground truth yet: ingest it first with --gt")

    gt = Path(gt) if gt is not None else None
    step = on_step or (lambda message: None)
    step("parsing and checking " + ", ".join(p.name for p in ([gt] if gt else []) + [p for p, _ in predictions]))
    # The scanners start first: they need numpy and numba only, and release the GIL while the main thread
    # imports DuckDB and pyarrow (~0.15 s at once).
    from concurrent.futures import ThreadPoolExecutor

    from odfail.ingest import _scan_kernels  # noqa: F401  (numba's import, once, before the threads)

    pool = ThreadPoolExecutor(max_workers=2)
    scans = _start_scans(pool, gt, predictions)
    import duckdb
    import pyarrow.parquet  # noqa: F401

    ws_path.parent.mkdir(parents=True, exist_ok=True)
    for folder in (ws_path, ws_path.parent):  # what killed writers left (a new workspace is staged beside it)
        if folder.is_dir():
            remove_dead_staging(folder)
    stage = staging_folder(ws_path.parent if ws is None else ws_path)
    con = duckdb.connect()
    staged: dict[Path, Path | None] = {}
    existed = ws is not None  # with runs and tables the new files must fit
    created = done = False
    builder = ThreadPoolExecutor(max_workers=1)
    try:
        skeleton = None
        if ws is None and not ws_path.exists():
            # A new workspace: its skeleton (empty tables, the catalog's views: ~0.06 s of DuckDB binding them)
            # is built on a thread while the files are scanned and checked, and removed again if the ingest fails.
            created = True
            skeleton = builder.submit(Workspace, ws_path, create=True)
        con.execute("set preserve_insertion_order = true")
        counts = _load_all(con, gt, predictions, stage, ws_path, scans)
        if skeleton is not None:
            ws = skeleton.result()
        step("storing")
        if gt is not None:
            for table in ("images", "categories", "gt"):
                staged[ws_path / f"{table}.parquet"] = stage / f"{table}.parquet"
            # the decoded GT masks belong to the old GT: an empty table until the next mask evaluation
            empty_masks = stage / "gt_masks.parquet"
            con.execute(f"create or replace temp table empty_masks ({SCHEMAS['gt_masks']}); "
                        f"copy empty_masks to {quote(str(empty_masks))} (format parquet)")
            staged[ws_path / "gt_masks.parquet"] = empty_masks
            if existed:
                # The old runs must still fit the new GT, and their match tables are stale.
                for run in ws.runs():
                    _raise_dangling_run(con, ws, run, gt)
                    for table in DERIVED:
                        staged[ws.table_path(table, run)] = None
        run_rows = []
        for path, run in predictions:
            staged[ws_path / "predictions" / f"{run}.parquet"] = stage / f"pred-{run}.parquet"
            for t in DERIVED:
                staged[ws_path / t / f"{run}.parquet"] = None
            run_rows.append((run, str(path), counts[f"run:{run}"]))
        if run_rows:
            old = (f"select * from read_parquet({quote(str(ws_path / 'runs.parquet'))}) "
                   "where run not in (select run from new_runs)" if existed else
                   "select * from new_runs where false")
            con.execute("create table new_runs (run VARCHAR, source VARCHAR, ingested_at TIMESTAMP, "
                        "predictions BIGINT)")
            now = datetime.now(UTC).replace(tzinfo=None)
            con.executemany("insert into new_runs values (?, ?, ?, ?)", [(r, s, now, n) for r, s, n in run_rows])
            out = stage / "runs.parquet"
            con.execute(f"copy (select * from ({old}) union all select * from new_runs order by run) "
                        f"to {quote(str(out))} (format parquet)")
            staged[ws_path / "runs.parquet"] = out
        con.close()
        con = None
        if ws is None:
            ws = Workspace(ws_path, create=True, build_catalog=False)  # swap_in builds it
        if gt is not None:
            (ws_path / ".has_gt").touch()
        ws.swap_in(staged, rebuild_catalog=not created)  # the skeleton's views read the files swapped in
        done = True
        step("done")
    finally:
        if con is not None:
            con.close()
        builder.shutdown()  # a skeleton still being built is finished before it is removed
        if created and not done:
            shutil.rmtree(ws_path, ignore_errors=True)
        for future in scans.values():  # after an error: release the mappings of scans nobody consumed
            scanned = future.result() if not future.cancel() and future.exception() is None else None
            if scanned is not None:
                scanned.close()
        pool.shutdown()
        shutil.rmtree(stage, ignore_errors=True)
    return IngestSummary(
        ws_path, images=counts.get("images"), categories=counts.get("categories"), gt=counts.get("gt"),
        runs={r: counts[f"run:{r}"] for _, r in predictions}, seconds=time.perf_counter() - t0)


def _raise_dangling_run(con, ws: Workspace, run: str, gt: Path) -> None:
    pred = quote(str(ws.table_path("predictions", run)))
    for col, ref in (("image_id", "images_chk"), ("category_id", "categories_chk")):
        row = con.execute(f"""select pred_id, {col} from read_parquet({pred}) p
            where not exists (select 1 from {ref} r where r.{col} = p.{col}) order by pred_id limit 1""").fetchall()
        if row:
            raise InputError(str(gt), None, None,
                             f"run {run!r} has predictions for {col} {row[0][1]} (prediction {row[0][0]}), "
                             "which this GT does not have; ingest that run again or into another workspace")
