"""Report: the analyses' tables -> Altair charts -> one self-contained HTML file.

Takes a workspace and a run (and optionally a second run to compare with); runs whatever step the report needs
that is not stored yet (evaluation, TIDE errors, outcomes, metric tables) and gives one HTML page that opens
offline, in the order an engineer investigates: headline, errors, per class, quantitative analysis (metric
importance, precision and recall by metric, PR curves with an IoU slider, calibration), data distribution,
worst cases, and the comparison. ``data`` aggregates, ``charts`` draws, ``page`` writes the HTML.
"""

from odfail._stage import callable_stage
from odfail.report.build import ReportResult, report

callable_stage(__name__, report)

__all__ = ["ReportResult", "report"]
