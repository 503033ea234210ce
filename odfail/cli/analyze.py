"""`odfail analyze` (per-class, pr, calibration) and `odfail compare`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from odfail.cli.ingest import WorkspaceOpt


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


analyze_app = typer.Typer(
    help="Why a run fails: outcomes per class, PR curves at any IoU, calibration. Matches what it needs on first "
         "use (outcomes at IoU 0.05 ... 0.95) and stores it in the workspace.",
    no_args_is_help=True)

IouOpt = Annotated[float, typer.Option("--iou", help="IoU threshold, 0.05 to 0.95 (0.05 steps are stored; "
                                                     "another value is matched and stored on first use).")]
ScoreOpt = Annotated[float | None, typer.Option("--score", help="Count only predictions scoring at least this.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")
    app.command("compare")(compare)


@analyze_app.callback()
def _target(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    run: Annotated[str, typer.Option("--run", "-r", help="Prediction run to analyse.")],
) -> None:
    ctx.obj = {"workspace": workspace, "run": run}


def _check_iou(iou: float) -> None:
    from odfail.match.outcomes import check_iou

    check_iou(iou)


def _emit(result, format: Format, table=None) -> None:
    if format is Format.json:
        typer.echo(result.to_json())
    elif format is Format.csv:
        import sys

        (table if table is not None else result.to_polars()).write_csv(sys.stdout)
    else:
        typer.echo(str(result))


@analyze_app.command("per-class")
def per_class(ctx: typer.Context, iou: IouOpt = 0.5, score: ScoreOpt = None,
              format: FormatOpt = Format.table) -> None:
    """Per class: GT, predictions, TP/FP/FN, precision, recall, F1 at the IoU; COCO's AP at the IoU, AP .50:.95
    and AR (equal to pycocotools' per class); the score threshold with the best F1; TIDE counts once `odfail
    errors` has run."""
    from odfail.analysis.classes import per_class as run

    _check_iou(iou)
    _emit(run(ctx.obj["workspace"], ctx.obj["run"], iou, score), format)


@analyze_app.command("pr")
def pr(ctx: typer.Context, iou: IouOpt = 0.5,
       classes: Annotated[list[str] | None, typer.Option("--class", help="Class name or id; repeatable "
                                                                          "(default: every class).")] = None,
       format: FormatOpt = Format.json) -> None:
    """Precision-recall curves at one IoU: COCO's 101-point interpolated precision per class (pycocotools'
    precision[t, :, k, 0, -1]) and the raw operating points (recall, precision, score), and the mean curve over
    classes with GT."""
    from odfail.analysis.classes import pr_curves

    _check_iou(iou)
    _emit(pr_curves(ctx.obj["workspace"], ctx.obj["run"], iou, classes), format)


@analyze_app.command("calibration")
def calibration(ctx: typer.Context, iou: IouOpt = 0.5,
                bins: Annotated[int, typer.Option("--bins", help="Equal-width score bins on [0, 1].")] = 10,
                per_class: Annotated[bool, typer.Option("--per-class", help="Also per class.")] = False,
                format: FormatOpt = Format.table) -> None:
    """Does a score of 0.9 mean 90 % right? Precision per score bin against the bin's mean score, ECE and MCE."""
    from odfail.analysis.calibration import calibration as run

    _check_iou(iou)
    _emit(run(ctx.obj["workspace"], ctx.obj["run"], iou, bins, per_class), format)


def compare(
    workspace: WorkspaceOpt,
    run: Annotated[list[str], typer.Option("--run", "-r", help="Two runs: --run OLD --run NEW.")],
    iou: IouOpt = 0.5,
    score: ScoreOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """Compare two runs on the same GT: COCO's 12 numbers, the headline block, per class and TIDE errors side by
    side with deltas, the GT found by one and missed by the other, and the images that got most worse."""
    from odfail.analysis.compare import compare as run_compare

    if len(run) != 2:
        from odfail.exceptions import WorkspaceError

        raise WorkspaceError(f"--run given {len(run)} times: compare takes exactly two runs (--run A --run B)")
    _check_iou(iou)
    result = run_compare(workspace, run[0], run[1], iou, score)
    _emit(result, format, result.per_class)
