"""`odfail sql` and `odfail info`: reading the workspace."""

from __future__ import annotations

import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from odfail.cli.ingest import WorkspaceOpt


class SqlFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class Format(str, Enum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
    app.command("info")(info)


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise typer.BadParameter(f"--param {text!r}: expected NAME=VALUE")
    name, value = text.split("=", 1)
    for cast in (int, float):
        try:
            return name, cast(value)
        except ValueError:
            pass
    return name, value


def sql(
    workspace: WorkspaceOpt,
    query: Annotated[str, typer.Argument(help="SQL over the views (images, categories, gt, runs, predictions, "
                                              "matches, gt_matches, match_at_iou, prediction_errors, gt_errors, "
                                              "errors, confusion, ...). '-' reads stdin.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Named parameter NAME=VALUE, "
                                                        "used as $NAME in the query. Repeatable.")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="DuckDB variable NAME=VALUE the views read, e.g. "
                                                   "pos_threshold, bg_threshold, score_threshold. Repeatable.")]
    = None,
    format: Annotated[SqlFormat, typer.Option("--format", "-f", help="Output format.")] = SqlFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout "
                                                 "(required for parquet).")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format (all rows in other formats).")] = 50,
) -> None:
    """Run ad-hoc SQL over a workspace with DuckDB. Values go in as named parameters, never into the SQL text.

    Example: odfail sql -w ws "select * from predictions where score > $s limit 5" -p s=0.9
    Example: odfail sql -w ws --var bg_threshold=0.2 "select error_type, count(*) from prediction_errors group by 1"
    """
    import duckdb

    from odfail.exceptions import WorkspaceError
    from odfail.store.workspace import Workspace

    if query == "-":
        query = sys.stdin.read()
    params = dict(_parse_param(p) for p in (param or [])) or None
    variables = [_parse_param(v) for v in (var or [])]
    for name, _ in variables:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise typer.BadParameter(f"--var {name!r}: a variable name is letters, digits and _")
    con = Workspace(workspace).connect()
    try:
        for name, value in variables:  # the name is checked above; the value is bound
            con.execute(f"set variable {name} = $value", {"value": value})
        rel = con.sql(query, params=params)
        if format is SqlFormat.table:
            import polars as pl

            df = rel.pl()
            with pl.Config(tbl_rows=limit, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
                text = str(df)
        elif format is SqlFormat.parquet:
            if out is None:
                raise typer.BadParameter("--format parquet needs --out FILE")
            import pyarrow.parquet as pq

            pq.write_table(rel.to_arrow_table(), out)
            return
        else:
            import polars as pl

            df = rel.pl()
            text = df.write_csv() if format is SqlFormat.csv else df.write_json()
    except duckdb.Error as e:
        raise WorkspaceError(f"SQL error: {e}") from None
    finally:
        con.close()
    if out is not None:
        out.write_text(text)
    else:
        typer.echo(text, nl=not text.endswith("\n"))  # csv and json end with a newline already


def info(
    workspace: WorkspaceOpt,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """What is in a workspace: images, categories, GT, runs, and data-quality notes."""
    from odfail.store.workspace import Workspace

    result = Workspace(workspace).info()
    typer.echo(json.dumps(result.to_dict(), indent=2) if format is Format.json else str(result))
