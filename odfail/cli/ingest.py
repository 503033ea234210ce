"""`odfail ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace directory.")]


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("images")(images)


def ingest(
    workspace: WorkspaceOpt,
    gt: Annotated[Path | None, typer.Option("--gt", help="COCO instances file (images, categories, "
                                                 "annotations). Replaces the workspace's GT.")] = None,
    pred: Annotated[list[Path] | None, typer.Option("--pred", help="COCO results file (a JSON list of "
                                                        "{image_id, category_id, bbox, score}). Repeatable.")] = None,
    run: Annotated[list[str] | None, typer.Option("--run", help="Run name for each --pred, in order "
                                                      "(default: the file's stem). Re-using a name replaces it.")]
    = None,
    images: Annotated[Path | None, typer.Option("--images", help="The folder of the GT's images (file_name is "
                                                "relative to it): image and object pixel metrics, and pictures "
                                                "in the report.")] = None,
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
    if images is not None and not images.is_dir():  # refused before anything is written
        from odfail.exceptions import WorkspaceError

        raise WorkspaceError(f"--images {images}: no such folder")
    summary = run_ingest(workspace, gt=gt, predictions=list(zip(pred, runs)), on_step=progress("ingest"))
    typer.echo(str(summary))
    if images is not None:
        _record_images(workspace, images)


def images(
    workspace: WorkspaceOpt,
    folder: Annotated[Path, typer.Argument(help="The folder of the GT's images (file_name is relative to it).")],
) -> None:
    """Record where the workspace's images are: the pixel metrics (brightness, contrast, sharpness, ...) join the
    metrics, and the report's worst cases show pictures. Missing or unreadable images are notes, not errors."""
    _record_images(workspace, folder)


def _record_images(workspace: Path, folder: Path) -> None:
    from odfail.analysis.pixels import set_images_folder
    from odfail.store.workspace import Workspace

    where = set_images_folder(Workspace(workspace), folder)
    typer.echo(f"images: {where} (pixel metrics are computed on the next metric analysis or report)")
