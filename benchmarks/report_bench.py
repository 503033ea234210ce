"""The report at val2017 scale, as whole processes: its size and time on a workspace where `evaluate` and
`errors` have run, and the one-shot form from the two JSON files.

    python benchmarks/report_bench.py [--set 5k] [--repeat 3]

Uses bench-data/<set> (made by benchmarks/run.py). Issue targets: <= 5 MB, <= 5 s from the workspace, <= 10 s
one-shot.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DATA, ODFAIL, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="5k")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    gt, dt = DATA / args.set / "gt.json", DATA / args.set / "predictions.json"
    if not gt.exists():
        raise SystemExit(f"{gt} is missing: run benchmarks/run.py --sets {args.set} first")
    tmp = Path(tempfile.mkdtemp(prefix="odfail-report-bench-"))
    try:
        ws, out = tmp / "ws", tmp / "report.html"
        timed([*ODFAIL, "ingest", "-w", str(ws), "--gt", str(gt), "--pred", str(dt), "--run", "bench"])
        timed([*ODFAIL, "evaluate", "-w", str(ws), "--run", "bench"])
        timed([*ODFAIL, "errors", "-w", str(ws), "--run", "bench"])
        first = timed([*ODFAIL, "report", "-w", str(ws), "--run", "bench", "--out", str(out)])
        later = [timed([*ODFAIL, "report", "-w", str(ws), "--run", "bench", "--out", str(out)])
                 for _ in range(args.repeat)]
        one = [timed([*ODFAIL, "report", "--gt", str(gt), "--pred", str(dt), "--out", str(tmp / "one.html")])
               for _ in range(args.repeat)]
        size = out.stat().st_size / 1e6
        print(f"| {args.set} | report after evaluate and errors, first (matches outcomes, metrics) | {first[0]:.2f} s, "
              f"{first[1]:.0f} MiB | {size:.1f} MB |")
        print(f"| {args.set} | report after evaluate and errors, later (median of {args.repeat}) | "
              f"{statistics.median(t[0] for t in later):.2f} s | |")
        print(f"| {args.set} | one-shot report from the two files (median of {args.repeat}) | "
              f"{statistics.median(t[0] for t in one):.2f} s | {(tmp / 'one.html').stat().st_size / 1e6:.1f} MB |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
