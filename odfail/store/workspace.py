"""The store: Parquet files plus a DuckDB catalog whose views come from ``sql/views``.

A workspace is a directory::

    WS/catalog.duckdb            views only (no data): open it with plain duckdb to query everything
    WS/images.parquet            one row per image
    WS/categories.parquet        one row per category
    WS/gt.parquet                one row per ground-truth annotation
    WS/runs.parquet              one row per prediction run
    WS/predictions/<run>.parquet one file per run
    WS/matches/<run>.parquet     per-prediction match facts, written by `odfail evaluate`
    WS/gt_matches/<run>.parquet  per-GT match facts, written by `odfail evaluate`
    WS/match_pairs/<run>.parquet (prediction, GT, IoU threshold) of every COCO match, written by `odfail evaluate`
    WS/tide_matches/<run>.parquet tidecv's matching per prediction and positive threshold, by `odfail errors`
    WS/gt_masks.parquet          GT masks as compressed RLE, written by their first mask evaluation
    WS/pred_masks/<run>.parquet  prediction masks as compressed RLE, likewise

Views read the Parquet files by absolute path (DuckDB resolves relative paths against the process's working
directory, not the catalog's), so the catalog is rebuilt whenever odfail opens a workspace that has moved.
Every table has an empty ``_empty.parquet`` twin in its folder so that globs always match and views always bind,
even before the first run is ingested.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odfail.exceptions import WorkspaceError

if TYPE_CHECKING:  # heavy imports stay off the CLI start-up path
    import duckdb
    import polars as pl

CATALOG = "catalog.duckdb"
# Bumped whenever the stored tables change shape; a workspace of another format is refused with a clear message.
FORMAT = "3"
# the built-in object metrics (odfail.analysis.metrics), as stored for GT and predictions alike
_OBJECT_METRICS = ("area DOUBLE, relative_area DOUBLE, width DOUBLE, height DOUBLE, aspect_ratio DOUBLE, "
                   "border_closeness DOUBLE, duplicate_iou DOUBLE, crowding_iou DOUBLE, best_iou DOUBLE, "
                   "objects_in_image DOUBLE, density DOUBLE")
# Column lists of every stored table; the single source of truth for empty files and for the README.
SCHEMAS: dict[str, str] = {
    "images": "image_id BIGINT, file_name VARCHAR, width INTEGER, height INTEGER",
    "categories": "category_id BIGINT, name VARCHAR, supercategory VARCHAR",
    "gt": ("gt_id BIGINT, file_idx BIGINT, image_id BIGINT, category_id BIGINT, x DOUBLE, y DOUBLE, w DOUBLE, "
           "h DOUBLE, area DOUBLE, iscrowd BOOLEAN, segmentation JSON"),
    "runs": "run VARCHAR, source VARCHAR, ingested_at TIMESTAMP, predictions BIGINT",
    "predictions": ("run VARCHAR, pred_id BIGINT, image_id BIGINT, category_id BIGINT, x DOUBLE, y DOUBLE, "
                    "w DOUBLE, h DOUBLE, score DOUBLE, area DOUBLE, class_rank BIGINT, segmentation JSON"),
    # written by `odfail evaluate` (odfail.match); the views pivot match_pairs into per-threshold columns
    "matches": ("run VARCHAR, pred_id BIGINT, image_id BIGINT, category_id BIGINT, score DOUBLE, rank INTEGER, "
                "iou_same DOUBLE, gt_same BIGINT, iou_other DOUBLE, gt_other BIGINT, category_other BIGINT, "
                "iou_crowd DOUBLE"),
    "gt_matches": ("run VARCHAR, gt_id BIGINT, image_id BIGINT, category_id BIGINT, ignored BOOLEAN, "
                   "iou_best DOUBLE, pred_best BIGINT"),
    "match_pairs": "run VARCHAR, pred_id BIGINT, gt_id BIGINT, iou_threshold DOUBLE",
    # written by `odfail errors` (odfail.tide): tidecv's matching, one set of rows per iou type and threshold
    "tide_matches": ("run VARCHAR, iou_type VARCHAR, pos_threshold DOUBLE, pred_id BIGINT, image_id BIGINT, "
                     "category_id BIGINT, score DOUBLE, kept BOOLEAN, image_rank INTEGER, push_order BIGINT, "
                     "class_order BIGINT, gt_id BIGINT, ignored BOOLEAN, image_has_gt BOOLEAN, iou_same DOUBLE, "
                     "gt_same BIGINT, iou_other DOUBLE, gt_other BIGINT, category_other BIGINT, iou_dupe DOUBLE, "
                     "gt_dupe BIGINT, iou_any DOUBLE"),
    # masks decoded into COCO compressed RLE (odfail.masks), written at first use: one row per GT / prediction;
    # counts null in every row when each mask is its segmentation's own string (the views then read that)
    "gt_masks": ("gt_id BIGINT, height INTEGER, width INTEGER, area BIGINT, x DOUBLE, y DOUBLE, w DOUBLE, "
                 "h DOUBLE, counts VARCHAR"),
    "pred_masks": ("run VARCHAR, pred_id BIGINT, height INTEGER, width INTEGER, area BIGINT, x DOUBLE, y DOUBLE, "
                   "w DOUBLE, h DOUBLE, counts VARCHAR"),
    # outcomes at a grid of IoU thresholds (odfail.match.outcomes), written by the first analysis that needs them
    "pred_outcomes": ("run VARCHAR, pred_id BIGINT, image_id BIGINT, category_id BIGINT, score DOUBLE, "
                      "class_rank BIGINT, kept BOOLEAN, tp_bits BIGINT, fp_bits BIGINT"),
    "gt_outcomes": ("run VARCHAR, gt_id BIGINT, image_id BIGINT, category_id BIGINT, ignored BOOLEAN, "
                    "match_score DOUBLE[]"),
    "class_curves": ("run VARCHAR, iou_threshold DOUBLE, category_id BIGINT, npig BIGINT, recall DOUBLE, "
                     "precision_101 DOUBLE[]"),
    "outcome_thresholds": "run VARCHAR, bit BIGINT, iou_threshold DOUBLE",
    # small JSON results of whole-run steps (COCO's 12 numbers, TIDE's dAP), so that comparisons read them
    "summaries": "run VARCHAR, kind VARCHAR, summary VARCHAR",
    # quality metrics (odfail.analysis.metrics), written by the first metric analysis; custom metrics add columns
    "gt_metrics": "run VARCHAR, gt_id BIGINT, image_id BIGINT, category_id BIGINT, " + _OBJECT_METRICS,
    "prediction_metrics": ("run VARCHAR, pred_id BIGINT, confidence DOUBLE, image_id BIGINT, category_id BIGINT, "
                           + _OBJECT_METRICS),
    "image_metrics": "run VARCHAR, image_id BIGINT, objects_in_image DOUBLE, density DOUBLE",
}
_OUTCOMES = ("pred_outcomes", "gt_outcomes", "class_curves", "outcome_thresholds", "summaries", "gt_metrics",
             "prediction_metrics", "image_metrics")
# Tables stored one file per run, in a folder of that name.
PER_RUN = ("predictions", "matches", "gt_matches", "match_pairs", "tide_matches", "pred_masks", *_OUTCOMES)
# Per-run tables computed from a run and the GT: stale (deleted) when either is ingested again.
DERIVED = ("matches", "gt_matches", "match_pairs", "tide_matches", "pred_masks", *_OUTCOMES)
# One read-only DuckDB instance per catalog file in this process: path -> ((inode, mtime), connection).
_INSTANCES: dict[str, tuple[tuple[int, int], Any]] = {}
# How odfail writes the tables it derives (match tables, tidecv's matching, masks), measured on the 5k set:
# no dictionaries (their ids and floats rarely repeat: writing them cost ~20% more), and row groups of 64k rows
# so that a 325k-row table splits evenly over both cores when a view reads it (3 groups of DuckDB's default
# 122,880 left one core idle for a third of the scan; `odfail errors` from stored matches: 95 -> 84 ms).
DERIVED_PARQUET = "format parquet, dictionary_size_limit 1, row_group_size 65536"

# Prefix of the folders writes are staged in, inside the workspace (or beside a new one).
STAGING = ".odfail-staging-"

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def sql_dir() -> Path:
    """Where the SQL files live: inside the wheel (``odfail/sql``) or at the repository top (editable install)."""
    package = Path(__file__).resolve().parents[1]
    for cand in (package / "sql", package.parent / "sql"):
        if (cand / "views").is_dir():
            return cand
    raise WorkspaceError(f"cannot find the sql/ folder next to {package}")


def check_run_name(run: str) -> str:
    if not RUN_NAME.match(run):
        raise WorkspaceError(f"run name {run!r} must be 1-128 characters of letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
    return run


def _empty_tables() -> Path:
    """A folder of empty Parquet files, one per table of SCHEMAS, written once per schema and copied into each
    new workspace (writing them with DuckDB took ~40 ms a workspace). Kept in this package's ``__pycache__``, or
    in a temporary folder where that is read-only."""
    import hashlib
    import tempfile

    import duckdb

    key = hashlib.sha1(repr(sorted(SCHEMAS.items())).encode()).hexdigest()[:16]
    for parent in (Path(__file__).parent / "__pycache__", Path(tempfile.gettempdir())):
        folder = parent / f"odfail-empty-tables-{key}"
        if folder.is_dir():
            return folder
        try:
            parent.mkdir(parents=True, exist_ok=True)  # (no __pycache__ yet where nothing was byte-compiled)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
            con = duckdb.connect()
            for table, schema in SCHEMAS.items():
                con.execute(f"create or replace temp table t ({schema}); "
                            f"copy t to {quote(str(tmp / (table + '.parquet')))} (format parquet)")
            con.close()
            try:
                os.rename(tmp, folder)
            except OSError:  # another process was first: use its folder
                shutil.rmtree(tmp, ignore_errors=True)
            if folder.is_dir():
                return folder
        except OSError:
            continue
    raise WorkspaceError("cannot write odfail's empty table files anywhere")


def staging_folder(parent: Path) -> Path:
    """A new folder for files being written before they are swapped in, named after this process so that a
    later write can tell whether its writer is gone (`remove_dead_staging`)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=parent))


def remove_dead_staging(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` whose process is gone (an ingest killed with SIGKILL leaves its
    folder behind: up to a gigabyte at 3M predictions); a live writer's folder, and any folder not named by
    `staging_folder`, stays. Returns what was removed."""
    removed = []
    for folder in parent.glob(STAGING + "*"):
        pid = folder.name[len(STAGING):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _dependency_order(views: dict[str, str]) -> dict[str, str]:
    """Views ordered so that each comes after the views its SQL names (outside comments), where that is a
    strict order; the rest keep file order at the end."""
    code = {n: re.sub(r"--[^\n]*", "", re.sub(r"/\*.*?\*/", "", body, flags=re.S)) for n, body in views.items()}
    needs = {n: {o for o in views if o != n and re.search(rf"\b{o}\b", code[n])} for n in views}
    done: list[str] = []
    while len(done) < len(views):
        ready = [n for n in views if n not in done and needs[n] <= set(done)]
        done += ready or [n for n in views if n not in done]
    return {n: views[n] for n in done}


def quote(s: str) -> str:
    """A SQL string literal. Only used for paths in DDL, which cannot take parameters."""
    return "'" + s.replace("'", "''") + "'"


@dataclass(frozen=True)
class RunInfo:
    run: str
    predictions: int
    source: str
    analyses: list[str] = field(default_factory=list)  # stored match tables: "coco", "tide bbox@0.5", "masks"


@dataclass(frozen=True)
class WorkspaceInfo:
    """What `odfail info` prints."""

    path: Path
    images: int
    categories: int
    gt: int
    crowd: int
    runs: list[RunInfo]
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"workspace {self.path}",
                 f"  images      {self.images:>10,}",
                 f"  categories  {self.categories:>10,}",
                 f"  gt          {self.gt:>10,}  ({self.crowd:,} crowd)",
                 f"  runs        {len(self.runs):>10,}"]
        for r in self.runs:
            lines.append(f"    {r.run:<24} {r.predictions:>10,} predictions  from {r.source}")
            if r.analyses:
                lines.append(f"    {'':<24} stored: {', '.join(r.analyses)}")
        if self.notes:
            lines.append("data-quality notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "images": self.images, "categories": self.categories, "gt": self.gt,
                "crowd": self.crowd, "runs": [r.__dict__ for r in self.runs], "notes": self.notes}


class Workspace:
    """A directory of Parquet tables and a DuckDB catalog of views over them.

    Example:
        >>> ws = Workspace("demo/ws")                                  # doctest: +SKIP
        >>> ws.sql("select run, count(*) n from predictions group by run")  # doctest: +SKIP
        >>> ws.sql("select * from gt where area < $a", a=32 ** 2)      # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, create: bool = False, build_catalog: bool = True):
        self.path = Path(path).resolve()
        if not (self.path / CATALOG).exists():
            if not create:
                raise WorkspaceError(f"{self.path} is not an odfail workspace (no {CATALOG}); "
                                     "create one with `odfail ingest -w DIR --gt GT.json`")
            self._init_empty(build_catalog)
        else:
            marker = self.path / ".odfail_format"
            found = marker.read_text().strip() if marker.exists() else "1"
            if found != FORMAT:
                raise WorkspaceError(f"{self.path} was written by another odfail version (workspace format {found}, "
                                     f"this odfail reads {FORMAT}); ingest the files into a new workspace")
            if self._catalog_stale():
                # a moved workspace, or one written before this odfail's tables and views existed
                self._init_empty(build_catalog=True)

    # ---- layout ----
    def table_path(self, table: str, run: str | None = None) -> Path:
        if table in PER_RUN:
            return self.path / table / f"{run if run is not None else '_empty'}.parquet"
        return self.path / f"{table}.parquet"

    @property
    def has_gt(self) -> bool:
        return (self.path / ".has_gt").exists()

    def runs(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "predictions").glob("*.parquet") if p.stem != "_empty")

    def require_run(self, run: str) -> str:
        if not self.table_path("predictions", run).exists():
            have = ", ".join(self.runs()) or "none"
            raise WorkspaceError(f"no run {run!r} in {self.path} (runs: {have})")
        return run

    # ---- connections ----
    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection to the catalog; close it when done. Read-only connections are cursors of one database
        instance per catalog file and process (starting a DuckDB instance costs ~12 ms), reopened when the
        catalog file has been replaced (ingest rebuilds it under a new name and renames it into place)."""
        import duckdb

        path = str(self.path / CATALOG)
        try:
            if not read_only:
                return duckdb.connect(path, read_only=False)
            st = os.stat(path)
            stamp = (st.st_ino, st.st_mtime_ns)
            cached = _INSTANCES.get(path)
            if cached is None or cached[0] != stamp:
                if cached is not None:
                    cached[1].close()
                _INSTANCES[path] = (stamp, duckdb.connect(path, read_only=True))
            return _INSTANCES[path][1].cursor()
        except (duckdb.IOException, OSError) as e:
            raise WorkspaceError(f"cannot open {path}: {e}") from None

    def engine(self) -> duckdb.DuckDBPyConnection:
        """A connection for work on the workspace's files that needs no view (reading its Parquet, writing the
        derived tables); close it when done. A cursor of the catalog's database when that opens (one DuckDB
        instance per process: starting another costs ~15 ms), else a new in-memory database (the catalog can be
        locked by a DuckDB session that opened it for writing)."""
        import duckdb

        try:
            return self.connect()
        except WorkspaceError:
            return duckdb.connect()

    def sql(self, query: str, **params: Any) -> pl.DataFrame:
        """Run a query over the workspace views with DuckDB named parameters (``$name``); returns polars."""
        import duckdb

        con = self.connect()
        try:
            return con.sql(query, params=params or None).pl()
        except duckdb.Error as e:
            raise WorkspaceError(f"SQL error: {e}") from None
        finally:
            con.close()

    def arrow(self, query: str, **params: Any):
        """Like `sql` but returns a pyarrow Table."""
        con = self.connect()
        try:
            return con.sql(query, params=params or None).to_arrow_table()
        finally:
            con.close()

    def info(self) -> WorkspaceInfo:
        """Counts, runs and data-quality notes (odd but meaningful input that was accepted)."""
        con = self.connect()
        try:
            one = lambda q: con.execute(q).fetchall()[0]  # noqa: E731
            n_img, no_size = one("select count(*), count(*) filter (width is null or height is null) from images")
            n_cat, no_sup = one("select count(*), count(*) filter (supercategory is null) from categories")
            n_gt, crowd, no_area, no_crowd, zero_gt, id0 = one("""
                select count(*), count(*) filter (iscrowd), count(*) filter (area is null),
                       count(*) filter (iscrowd is null), count(*) filter (w = 0 or h = 0),
                       count(*) filter (gt_id = 0) from gt""")
            runs = [RunInfo(r, n, s) for r, n, s in
                    con.execute("select run, predictions, source from runs order by run").fetchall()]
            # which analyses are stored per run (what later commands reuse instead of recomputing)
            tide: dict[str, list[str]] = {}
            for r, kind, pos in con.execute("select distinct run, iou_type, pos_threshold from tide_matches "
                                            "order by all").fetchall():
                tide.setdefault(r, []).append(f"TIDE matching ({kind} @ {pos:g})")
            for info in runs:
                if self.table_path("matches", info.run).exists():
                    info.analyses.append("COCO match tables (bbox)")
                info.analyses.extend(tide.get(info.run, []))
                if self.table_path("pred_masks", info.run).exists():
                    info.analyses.append("decoded masks")
            per_run = con.execute("""
                select run, count(*) filter (w = 0 or h = 0), count(*) filter (score < 0),
                       count(*) filter (category_id not in (select distinct category_id from gt))
                from predictions group by run order by run""").fetchall()
        finally:
            con.close()
        notes = []
        if no_size:
            notes.append(f"{no_size:,} images have no width/height (border metrics skip them)")
        if no_sup:
            notes.append(f"{no_sup:,} categories have no supercategory")
        if no_area:
            notes.append(f"{no_area:,} GT annotations have no area; evaluation uses their box area w*h")
        if no_crowd:
            notes.append(f"{no_crowd:,} GT annotations have no iscrowd; read as not crowd (as pycocotools does)")
        if zero_gt:
            notes.append(f"{zero_gt:,} GT boxes have zero width or height (IoU 0 with everything)")
        if id0:
            notes.append("a GT annotation has id 0: pycocotools counts a prediction matched to it as a false "
                         "positive (it tests the matched id for truth); odfail does the same to stay exact")
        image_notes = self.path / "image_notes.json"
        if image_notes.exists():
            import json

            found = json.loads(image_notes.read_text())
            notes += [f"image: {n}" for n in found[:10]]
            if len(found) > 10:
                notes.append(f"image: ... and {len(found) - 10:,} more image notes")
        for r in runs:
            if r.predictions == 0:
                notes.append(f"run {r.run!r} has no predictions")
        for run, zero, neg, no_gt_cat in per_run:
            if zero:
                notes.append(f"run {run!r}: {zero:,} predictions have zero width or height (IoU 0)")
            if neg:
                notes.append(f"run {run!r}: {neg:,} predictions have negative scores (ranked as given)")
            if no_gt_cat:
                notes.append(f"run {run!r}: {no_gt_cat:,} predictions are of categories without any GT "
                             "(COCO leaves those categories out of AP)")
        return WorkspaceInfo(self.path, n_img, n_cat, n_gt, crowd, runs, notes)

    def summary(self, run: str, kind: str) -> dict[str, Any] | None:
        """A stored summary of a whole-run step (`store_summary`), or None."""
        import json

        path = self.table_path("summaries", run)
        if not path.exists():
            return None
        con = self.engine()
        try:
            rows = con.execute(f"select summary from read_parquet({quote(str(path))}) where kind = $kind",
                               {"kind": kind}).fetchall()
        finally:
            con.close()
        return json.loads(rows[0][0]) if rows else None

    def store_summary(self, run: str, kind: str, doc: dict[str, Any]) -> None:
        """Keep ``doc`` (JSON-able) as the run's summary of ``kind``, replacing an older one of that kind."""
        import json

        path = self.table_path("summaries", run)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".parquet.{os.getpid()}.tmp")
        older = (f"select * from read_parquet({quote(str(path))}) where kind <> $kind union all "
                 if path.exists() else "")
        con = self.engine()
        try:
            con.execute(f"copy ({older} select $run as run, $kind as kind, $doc as summary) to {quote(str(tmp))} "
                        "(format parquet)", {"run": run, "kind": kind, "doc": json.dumps(doc)})
        finally:
            con.close()
        os.replace(tmp, path)

    # ---- writing ----
    def swap_in(self, staged: dict[Path, Path | None], rebuild_catalog: bool = True) -> None:
        """Move staged files into place (``None`` deletes the target), then rebuild the catalog (unless it was
        just built over the same layout)."""
        for target, src in staged.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            if src is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(src, target)
        if rebuild_catalog:
            self.rebuild_catalog()

    def _init_empty(self, build_catalog: bool = True) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / ".odfail_format").write_text(FORMAT)
        templates = _empty_tables()
        for table in SCHEMAS:
            target = self.table_path(table)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(templates / f"{table}.parquet", target)
        if build_catalog:
            self.rebuild_catalog()

    def _catalog_stamp(self) -> str:
        """What the catalog was built for: this path and these view files (a new odfail may add views)."""
        import hashlib

        digest = hashlib.sha1()
        for p in sorted((sql_dir() / "views").glob("*.sql")):
            digest.update(p.name.encode() + b"\0" + p.read_bytes())
        return f"{self.path}\n{digest.hexdigest()}"

    def _catalog_stale(self) -> bool:
        marker = self.path / ".catalog_root"
        return not marker.exists() or marker.read_text() != self._catalog_stamp()

    def rebuild_catalog(self) -> None:
        """Create every view of ``sql/views`` in a new catalog file and swap it in."""
        import duckdb

        views = _dependency_order({p.stem: p.read_text() for p in sorted((sql_dir() / "views").glob("*.sql"))})
        tmp = self.path / f".{CATALOG}.{uuid.uuid4().hex[:8]}"
        con = duckdb.connect(str(tmp))
        try:
            pending = dict(views)
            # Views may select from other views; create them in whatever order binds (dependencies first: a
            # view that fails to bind costs as much as one that binds).
            while pending:
                progressed, errors = False, {}
                for name, body in list(pending.items()):
                    try:
                        con.execute(f"create or replace view {name} as\n"
                                    + body.replace("{workspace}", str(self.path).replace("'", "''")))
                        del pending[name]
                        progressed = True
                    except (duckdb.CatalogException, duckdb.BinderException) as e:
                        errors[name] = e
                if not progressed:
                    # the root cause, not a view that fails only because another one does
                    name, err = next(((n, e) for n, e in errors.items() if isinstance(e, duckdb.BinderException)),
                                     next(iter(errors.items())))
                    first = str(err).splitlines()[0]
                    raise WorkspaceError(f"view {name} does not bind over the stored tables ({first}); a table may "
                                         "come from another odfail version: ingest the files into a new workspace")
        except BaseException:
            con.close()
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, self.path / CATALOG)
        (self.path / ".catalog_root").write_text(self._catalog_stamp())
