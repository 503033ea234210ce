"""`odfail ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace directory.")]


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    workspace: WorkspaceOpt,
    gt: Annotated[Path | None, typer.Option("--gt", help="COCO instances file (images, categories, "
                                                 "annotations). Replaces the workspace's GT.")] = None,
    pred: Annotated[list[Path] | None, typer.Option("--pred", help="COCO results file (a JSON list of "
                                                        "{image_id, category_id, bbox, score}). Repeatable.")] = None,
    run: Annotated[list[str] | None, typer.Option("--run", help="Run name for each --pred, in order "
                                                      "(default: the file's stem). Re-using a name replaces it.")]
    = None,
) -> None:
    """Validate COCO ground truth and/or prediction files and store them in a workspace, all or nothing.

    Bad input stops with exit code 2 and one line naming the file, the record and the field; the workspace
    is then exactly as it was.
    """
    from odfail.cli import progress
    from odfail.ingest.coco import ingest as run_ingest

    pred = pred or []
    run = run or []
    if len(run) > len(pred):
        raise typer.BadParameter("more --run names than --pred files")
    runs = run + [p.stem for p in pred[len(run):]]
    if gt is None and not pred:
        raise typer.BadParameter("give --gt and/or --pred")
    summary = run_ingest(workspace, gt=gt, predictions=list(zip(pred, runs)), on_step=progress("ingest"))
    typer.echo(str(summary))
