"""In-process timings of the analyses (per class, PR curves, calibration, compare) on a workspace with a run.

    python benchmarks/inproc_analysis.py WS RUN [--repeat 5]

Ingests RUN's predictions again as a second run (``RUN-b``, for compare), then prints, in seconds: matching and
storing the outcomes of both runs (first use), and the median of --repeat calls of each analysis from the stored
tables (the in-process cache of read outcomes cleared before each call; compare after both runs' COCO numbers
and TIDE summaries are stored, as `evaluate` and `errors` store them).
Issue targets at the 5k set: each analysis <= 0.3 s in-process; every built-in metric <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ws")
    ap.add_argument("run")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from odfail import Workspace, ingest
    from odfail.analysis import metrics as metrics_module
    from odfail.analysis.by_metric import by_metric, importance
    from odfail.analysis.calibration import calibration
    from odfail.analysis.classes import per_class, pr_curves
    from odfail.analysis.compare import compare
    from odfail.analysis.distribution import distribution
    from odfail.evaluate.tide import errors
    from odfail.match.outcomes import _CACHE, outcomes

    ws = Workspace(args.ws)
    source = ws.sql("select source from runs where run = $r", r=args.run)["source"][0]
    b = f"{args.run}-b"
    ingest(args.ws, predictions=[(source, b)])
    rows = []
    t0 = time.perf_counter()
    outcomes(ws, args.run)
    rows.append(("outcomes: match and store, first use", time.perf_counter() - t0))
    outcomes(ws, b)
    for table in metrics_module.TABLES.values():  # built afresh: the first-use cost
        ws.table_path(table, args.run).unlink(missing_ok=True)
    t0 = time.perf_counter()
    metrics_module.metric_tables(ws, args.run)
    rows.append(("every built-in metric, GT and predictions: compute and store, first use",
                 time.perf_counter() - t0))
    errors(ws, args.run)
    errors(ws, b)
    compare(ws, args.run, b, 0.5)  # stores the COCO numbers of runs never evaluated with this odfail
    for name, call in (("per-class at 0.5", lambda: per_class(ws, args.run, 0.5)),
                       ("PR curves at 0.5, every class", lambda: pr_curves(ws, args.run, 0.5)),
                       ("calibration, 10 bins, per class", lambda: calibration(ws, args.run, 0.5, 10, True)),
                       ("compare two runs", lambda: compare(ws, args.run, b, 0.5)),
                       ("by-metric, height, 10 buckets", lambda: by_metric(ws, args.run, "height")),
                       ("importance over every metric", lambda: importance(ws, args.run)),
                       ("distribution", lambda: distribution(ws, args.run))):
        times = []
        for _ in range(args.repeat):
            _CACHE.clear()  # read the stored tables each time, as a new process does
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        rows.append((name, statistics.median(times)))
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} s |")


if __name__ == "__main__":
    main()
