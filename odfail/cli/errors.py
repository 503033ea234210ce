"""`odfail errors` and `odfail confusion`: why the predictions are wrong."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from odfail.cli.ingest import WorkspaceOpt


class Format(str, Enum):
    table = "table"
    json = "json"


class MatrixFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class By(str, Enum):
    class_ = "class"
    supercategory = "supercategory"


RunOpt = Annotated[str, typer.Option("--run", "-r", help="Prediction run to analyse.")]
IouTypeOpt = Annotated[str, typer.Option("--iou-type", help="bbox, or segm (mask IoU: tidecv's mask mode).")]


def register(app: typer.Typer) -> None:
    app.command("errors")(errors)
    app.command("confusion")(confusion)


def errors(
    workspace: WorkspaceOpt,
    run: RunOpt,
    pos_threshold: Annotated[float, typer.Option("--pos-threshold", help="IoU at which a prediction is a "
                                                  "true positive (tidecv pos_threshold).")] = 0.5,
    bg_threshold: Annotated[float, typer.Option("--bg-threshold", help="IoU at or below which a prediction "
                                                 "overlaps nothing (tidecv background_threshold).")] = 0.1,
    iou_type: IouTypeOpt = "bbox",
    per_class: Annotated[bool, typer.Option("--per-class", help="Also print counts and dAP per class.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """TIDE error analysis (equal to tidecv): each false positive typed as Cls, Loc, Both, Dupe or Bkg, each
    missed GT as Miss, and the AP each type costs (dAP: AP gained by fixing that type alone).

    Stores tidecv's matching as the `tide_matches` view; the types come from the `prediction_errors`,
    `gt_errors` and `errors` views, which you can query with `odfail sql`.
    """
    from odfail.cli import progress
    from odfail.evaluate.tide import errors as run_errors

    result = run_errors(workspace, run, pos_threshold, bg_threshold, iou_type, on_step=progress("errors"))
    if format is Format.json:
        typer.echo(result.to_json())
        return
    typer.echo(str(result))
    if per_class:
        _print_per_class(workspace, result)


def _print_per_class(workspace, result) -> None:
    import polars as pl

    from odfail.cli import print_per_class
    from odfail.evaluate.taxonomy import SHORT_NAMES

    # classes tidecv leaves out of its mean (no GT and no scored prediction) have AP NaN
    print_per_class(workspace, result.to_polars(), ["gt", "ap", *SHORT_NAMES, *(f"dAP_{n}" for n in SHORT_NAMES)],
                    keep=pl.col("ap").is_not_nan(), sort="dAP_Cls")


def confusion(
    workspace: WorkspaceOpt,
    run: RunOpt,
    iou: Annotated[float, typer.Option("--iou", help="IoU at which a prediction finds an object.")] = 0.5,
    score: Annotated[float, typer.Option("--score", help="Only predictions with at least this score.")] = 0.0,
    by: Annotated[By, typer.Option("--by", help="Rows and columns: classes or supercategories.")] = By.class_,
    top: Annotated[int, typer.Option("--top", help="How many confused pairs to list.")] = 10,
    iou_type: IouTypeOpt = "bbox",
    format: Annotated[MatrixFormat, typer.Option("--format", "-f", help="Output format.")] = MatrixFormat.table,
) -> None:
    """Confusion matrix with background (rows: actual class, columns: predicted) and the most confused pairs.

    One-to-one: each GT counts once, each prediction once; see the `confusion` view for the exact rule.
    """
    from odfail.evaluate.confusion import confusion as run_confusion

    result = run_confusion(workspace, run, iou, score, by.value, top, iou_type)
    if format is MatrixFormat.json:
        typer.echo(result.to_json())
    elif format is MatrixFormat.csv:
        typer.echo(result.to_polars().write_csv(), nl=False)
    else:
        typer.echo(str(result))
