"""`odfail report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace directory (with --gt: "
                                                   "ingest into it; without: a temporary one).")] = None,
    run: Annotated[str | None, typer.Option("--run", "-r", help="The run to report on (in a workspace).")] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="Another run of the workspace to compare it "
                                                                  "with (the old one).")] = None,
    gt: Annotated[Path | None, typer.Option("--gt", help="One-shot form: a COCO GT file ...")] = None,
    pred: Annotated[list[Path] | None, typer.Option("--pred", help="... and a results file; a second --pred is "
                                                    "the new run, compared with the first.")] = None,
    iou: Annotated[float, typer.Option("--iou", help="IoU threshold of the headline, per-class and metric "
                                                     "sections.")] = 0.5,
    score: Annotated[float | None, typer.Option("--score", help="Count only predictions scoring at least this.")]
    = None,
) -> None:
    """Write the failure-mode walkthrough of a run as one HTML file that opens offline: headline, errors, per
    class, quantitative analysis (metric importance, precision/recall by metric, PR curves with an IoU slider,
    calibration), data distribution, worst cases, and a comparison with --compare. Runs every step it needs
    that the workspace has not stored yet.

    Two forms: `odfail report -w WS --run NAME [--compare OLD]`, or `odfail report --gt GT.json --pred PRED.json
    [--pred NEW.json]` (ingests them first)."""
    import shutil
    import tempfile

    from odfail.cli import progress
    from odfail.exceptions import WorkspaceError
    from odfail.report import report as run_report

    step = progress("report")
    temporary = None
    try:
        if gt is not None or pred:
            if gt is None or not pred or len(pred) > 2 or run is not None or compare is not None:
                raise WorkspaceError("the one-shot form takes --gt and one or two --pred (no --run, no --compare)")
            from odfail.ingest import ingest

            if workspace is None:
                temporary = Path(tempfile.mkdtemp(prefix="odfail-report-"))
                workspace = temporary / "ws"
            names = ["old", "new"] if len(pred) == 2 else ["run"]
            if step:
                step("ingesting")
            ingest(workspace, gt=gt, predictions=list(zip(pred, names)))
            run, compare = names[-1], (names[0] if len(pred) == 2 else None)
        elif workspace is None or run is None:
            raise WorkspaceError("give -w WS --run NAME, or --gt GT.json --pred PRED.json")
        result = run_report(workspace, run, out, compare, iou, score, on_step=step)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    typer.echo(str(result))
