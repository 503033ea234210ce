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


metric_app = typer.Typer(help="Custom quality metrics: an SQL expression over the gt, predictions or images view, "
                              "stored in the workspace and usable wherever a built-in metric is.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")
    app.add_typer(metric_app, name="metric")
    app.command("compare")(compare)
    app.command("metrics")(metrics)


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


class Bucketing(str, Enum):
    equal_width = "equal-width"
    quantile = "quantile"


@analyze_app.command("by-metric")
def by_metric(ctx: typer.Context,
              metric: Annotated[str, typer.Argument(help="A metric name (`odfail metrics -w WS` lists them).")],
              buckets: Annotated[int, typer.Option("--buckets", help="Number of buckets.")] = 10,
              bucketing: Annotated[Bucketing, typer.Option("--bucketing", help="equal-width over [min, max] of both "
                                                           "sides, or quantile.")] = Bucketing.equal_width,
              iou: IouOpt = 0.5, score: ScoreOpt = None,
              per_class: Annotated[bool, typer.Option("--per-class", help="Also per class (same buckets).")] = False,
              format: FormatOpt = Format.table) -> None:
    """Precision and recall per bucket of a metric, with TP/FP and found/FN counts: predictions are bucketed by
    their own value (precision), GT objects by theirs (recall)."""
    from odfail.analysis.by_metric import by_metric as run

    _check_iou(iou)
    _emit(run(ctx.obj["workspace"], ctx.obj["run"], metric, buckets, bucketing.value, iou, score, per_class), format)


@analyze_app.command("importance")
def importance(ctx: typer.Context, iou: IouOpt = 0.5, score: ScoreOpt = None,
               format: FormatOpt = Format.table) -> None:
    """Which metrics explain the outcome (TP for predictions, found for GT): mutual information (k-NN, nats),
    Pearson and Spearman correlation per metric and side, ranked by mutual information."""
    from odfail.analysis.by_metric import importance as run

    _check_iou(iou)
    _emit(run(ctx.obj["workspace"], ctx.obj["run"], iou, score), format)


@analyze_app.command("outliers")
def outliers(ctx: typer.Context,
             metric: Annotated[str, typer.Argument(help="A metric name.")],
             limit: Annotated[int, typer.Option("--limit", help="Objects listed per side, farthest first.")] = 100,
             format: FormatOpt = Format.table) -> None:
    """Objects outside the IQR fences of a metric: moderate (1.5 x IQR) and severe (2.5 x IQR)."""
    from odfail.analysis.by_metric import outliers as run

    _emit(run(ctx.obj["workspace"], ctx.obj["run"], metric, limit), format)


@analyze_app.command("distribution")
def distribution(ctx: typer.Context, score: ScoreOpt = None,
                 format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table
                 ) -> None:
    """The data: class frequency (GT, predictions, predictions above --score), COCO sizes per class, objects per
    image, image sizes, class co-occurrence."""
    from odfail.analysis.distribution import distribution as run

    _emit(run(ctx.obj["workspace"], ctx.obj["run"], score), format)


def metrics(workspace: WorkspaceOpt, format: FormatOpt = Format.table) -> None:
    """List the quality metrics: built-in and custom, with the side they are on and what they measure."""
    import json

    from odfail.analysis.metrics import registry
    from odfail.store.workspace import Workspace

    rows = [{"name": m.name, "on": m.on, "description": m.description, "sql": m.sql}
            for m in registry(Workspace(workspace))]
    if format is Format.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['name']:<18} {r['on']:<12} {r['description']}")


@metric_app.command("add")
def metric_add(
    workspace: WorkspaceOpt,
    name: Annotated[str, typer.Argument(help="Metric name: lowercase letters, digits, '_'.")],
    on: Annotated[str, typer.Option("--on", help="gt, predictions or images: the view the expression reads.")],
    sql: Annotated[str | None, typer.Option("--sql", help="An SQL expression over that view's columns, e.g. "
                                                          "\"w * h / 1000\".")] = None,
    file: Annotated[str | None, typer.Option("--file", help="Read the expression from a file.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="One line for `odfail metrics`.")] = None,
) -> None:
    """Add a custom metric: checked (a numeric expression that evaluates on every row) before it is stored."""
    from pathlib import Path

    from odfail.analysis.metrics import add_custom
    from odfail.exceptions import WorkspaceError
    from odfail.store.workspace import Workspace

    if (sql is None) == (file is None):
        raise WorkspaceError("give the expression with exactly one of --sql or --file")
    if file is not None:
        try:
            sql = Path(file).read_text()
        except OSError as e:
            raise WorkspaceError(f"--file {file}: {e.strerror}") from None
    m = add_custom(Workspace(workspace), name, on, sql, description)
    typer.echo(f"added {m.name} on {m.on}: {m.sql}")


@metric_app.command("list")
def metric_list(workspace: WorkspaceOpt) -> None:
    """The workspace's custom metrics."""
    from odfail.analysis.metrics import custom
    from odfail.store.workspace import Workspace

    for m in custom(Workspace(workspace)):
        typer.echo(f"{m.name:<18} {m.on:<12} {m.sql}")


@metric_app.command("remove")
def metric_remove(workspace: WorkspaceOpt, name: Annotated[str, typer.Argument(help="Custom metric name.")]) -> None:
    """Remove a custom metric."""
    from odfail.analysis.metrics import remove_custom
    from odfail.store.workspace import Workspace

    remove_custom(Workspace(workspace), name)
    typer.echo(f"removed {name}")
