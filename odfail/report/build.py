"""`report`: a run's failure-mode walkthrough as one HTML file (see ``odfail.report``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odfail.store.workspace import Workspace


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    charts: int
    seconds: float

    def __str__(self) -> str:
        return (f"wrote {self.path} ({self.bytes / 1e6:.1f} MB, {self.charts} charts, {self.seconds:.1f} s); "
                "open it in a browser, no network needed")


def report(workspace: Workspace | str, run: str, out: str | os.PathLike = "report.html", compare: str | None = None,
           iou: float = 0.5, score: float | None = None, on_step: Callable[[str], None] | None = None
           ) -> ReportResult:
    """Write the report of ``run`` (against run ``compare`` if given) to ``out``, running every step it needs
    that the workspace has not stored yet.

    Example:
        >>> report("ws", "fixed", "report.html", compare="baseline")   # doctest: +SKIP
    """
    from datetime import datetime

    from odfail.exceptions import WorkspaceError
    from odfail.match.outcomes import check_iou
    from odfail.report import charts, page
    from odfail.report.data import gather
    from odfail.store.workspace import Workspace

    t0 = time.perf_counter()
    check_iou(iou)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if compare == run:
        raise WorkspaceError(f"--compare {compare}: the run itself; compare with another run")
    if compare is not None:
        ws.require_run(compare)
    step = on_step or (lambda message: None)
    d = gather(ws, run, compare, iou, score, step)
    step("charts")
    figures = charts.figures(d)
    specs = {f.id: charts.spec(f) for group in figures.values() for f in group}
    html = page.page(d, figures, specs, datetime.now().strftime("%Y-%m-%d %H:%M"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    step("done")
    return ReportResult(out.resolve(), len(html.encode()), len(specs), time.perf_counter() - t0)
