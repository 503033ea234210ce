"""The `odfail` command: one typer sub-module per command group, each thin (parse, call the library, print)."""

from __future__ import annotations

import os
import sys

import typer

from odfail.cli import analyze, errors, evaluate, ingest, query, report, synth

app = typer.Typer(
    name="odfail",
    help="Why does my object detector fail? Ingest COCO files into a workspace, evaluate them COCO-exactly, "
         "type their errors the TIDE way, analyse classes, curves and calibration, compare runs, and ask "
         "questions in SQL, and write it all as one HTML report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (ingest, query, synth, evaluate, errors, analyze, report):
    module.register(app)


def progress(prefix: str):
    """A step printer for long commands: one updating line on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None
    import time

    t0 = time.perf_counter()

    def step(message: str) -> None:
        end = "\n" if message == "done" else ""
        print(f"\r\033[K{prefix}: {message} ({time.perf_counter() - t0:.1f}s)", end=end, file=sys.stderr, flush=True)

    return step


def print_per_class(workspace, per_class, columns: list[str], keep=None, sort: str | None = None) -> None:
    """A result's per-class table (polars) with category names, every row and column, 3 decimals."""
    import polars as pl

    from odfail.store.workspace import Workspace

    names = Workspace(workspace).sql("select category_id, name from categories")
    df = per_class.join(names, on="category_id", how="left")
    if keep is not None:
        df = df.filter(keep)
    if sort is not None:
        df = df.sort(sort, descending=True)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=250, float_precision=3, tbl_hide_dataframe_shape=True):
        typer.echo(str(df.select("category_id", "name", *columns)))


def main() -> None:
    """Entry point: bad input and workspace problems print one line and exit 2, never a traceback."""
    from odfail.exceptions import InputError, WorkspaceError

    # odfail never calls BLAS, but OpenBLAS starts a thread per core when numpy loads, and each spins ~0.1 CPU-s
    # before it sleeps: on a 2-core machine that is CPU taken from the command (5k ingest: 0.91 -> 0.79 CPU-s).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()  # typer's standalone mode prints usage errors itself and raises SystemExit
        code = 0
    except (InputError, WorkspaceError) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    # Every file and connection is closed by now; skipping interpreter teardown (numba, LLVM and DuckDB
    # unload for ~0.3 s) is the difference between a snappy command and a sluggish one.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
