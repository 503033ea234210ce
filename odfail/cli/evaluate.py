"""`odfail evaluate`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from odfail.cli.ingest import WorkspaceOpt


class Format(str, Enum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


def _area_ranges(specs: list[str]) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {"all": (0.0, 1e5**2)}
    for spec in specs:
        try:
            name, bounds = spec.split("=", 1)
            lo, hi = (float(v) for v in bounds.split(":", 1))
        except ValueError:
            raise typer.BadParameter(f"--area-range {spec!r}: expected NAME=LO:HI, e.g. tiny=0:256") from None
        ranges[name] = (lo, hi)
    return ranges


def evaluate(
    workspace: WorkspaceOpt,
    run: Annotated[str, typer.Option("--run", "-r", help="Prediction run to evaluate.")],
    iou_type: Annotated[str, typer.Option("--iou-type", help="bbox, or segm (mask IoU over the segmentations, "
                                                             "as pycocotools iouType='segm').")] = "bbox",
    area_range: Annotated[list[str] | None, typer.Option(
        "--area-range", help="Custom area range NAME=LO:HI in pixels², both ends inclusive; repeatable. Replaces "
                             "small/medium/large (\"all\" stays first). Adds AP_NAME / AR_NAME.")] = None,
    max_dets: Annotated[str, typer.Option("--max-dets", help="Comma-separated maxDets; AP uses the largest.")]
    = "1,10,100",
    class_agnostic: Annotated[bool, typer.Option("--class-agnostic", help="Ignore categories when matching "
                                                  "(pycocotools useCats=0).")] = False,
    iou: Annotated[float, typer.Option("--iou", help="IoU threshold of the headline block (mAP, mAR, F1, "
                                                     "precision, recall, TP/FP/FN).")] = 0.5,
    score: Annotated[float | None, typer.Option("--score", help="Score threshold of the headline block's "
                                                     "TP/FP/FN, precision, recall and F1.")] = None,
    no_write: Annotated[bool, typer.Option("--no-write", help="Do not store the match tables.")] = False,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also print the per-class table.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """COCO-exact evaluation of a run (bit-identical to pycocotools COCOeval), plus headline numbers at one IoU.

    Stores per-prediction and per-GT match facts as the `matches` and `gt_matches` views for SQL.
    """
    from odfail.evaluate.coco import DEFAULT_AREAS, Params
    from odfail.evaluate.coco import evaluate as run_evaluate

    try:
        md = tuple(int(v) for v in max_dets.split(","))
    except ValueError:
        raise typer.BadParameter(f"--max-dets {max_dets!r}: expected integers like 1,10,100") from None
    params = Params(area_ranges=_area_ranges(area_range) if area_range else dict(DEFAULT_AREAS), max_dets=md,
                    use_cats=not class_agnostic, iou=iou, score=score)
    from odfail.cli import progress

    result = run_evaluate(workspace, run, params, iou_type=iou_type, write_matches=not no_write,
                          on_step=progress("evaluate"))
    if format is Format.json:
        typer.echo(result.to_json())
        return
    typer.echo(str(result))
    if per_class:
        _print_per_class(workspace, result, run, iou_type, params)


def _print_per_class(workspace, result, run: str, iou_type: str, params) -> None:
    from odfail.cli import print_per_class
    from odfail.evaluate.coco import _default

    if iou_type == "bbox" and _default(params) and 0.05 <= params.iou <= 0.95:
        # the table of `odfail analyze per-class`: one implementation of the per-class outcomes
        from odfail.analysis.classes import per_class

        typer.echo(str(per_class(workspace, run, params.iou, params.score)))
        return
    print_per_class(workspace, result.to_polars(), ["gt", "ap", "ap_at_iou", "ar_at_iou", "tp", "fp", "fn",
                                                    "precision", "recall", "f1"], sort="ap")
