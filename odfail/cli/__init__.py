"""The `odfail` command: one typer sub-module per command group, each thin (parse, call the library, print)."""

from __future__ import annotations

import sys

import typer

from odfail.cli import evaluate, ingest, query, synth

app = typer.Typer(
    name="odfail",
    help="Why does my object detector fail? Ingest COCO files into a workspace, evaluate them COCO-exactly, "
         "and ask questions in SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (ingest, query, synth, evaluate):
    module.register(app)


def main() -> None:
    """Entry point: bad input and workspace problems print one line and exit 2, never a traceback."""
    from odfail.errors import InputError, WorkspaceError

    try:
        app()
    except (InputError, WorkspaceError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
