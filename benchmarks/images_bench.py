"""Pixel metrics at val2017 scale: every image metric on the 5k set's images (drawn by `odfail synth --render`,
640 pixels wide) and the report with its pictures.

    python benchmarks/images_bench.py [--set 5k]

Uses bench-data/<set> (made by benchmarks/run.py); draws the images once into bench-data/<set>/images. Issue
targets: every image metric on 5,000 images <= 30 s; the report with pictures <= 5 MB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DATA  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="5k")
    args = ap.parse_args()
    from odfail import Workspace, ingest
    from odfail.analysis.metrics import metric_tables
    from odfail.analysis.pixels import set_images_folder
    from odfail.report import report
    from odfail.synth_render import render

    data = DATA / args.set
    folder = data / "images"
    if not folder.exists():
        t0 = time.perf_counter()
        render(data)
        print(f"drew {len(list(folder.iterdir())):,} images in {time.perf_counter() - t0:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="odfail-images-bench-"))
    try:
        ws = tmp / "ws"
        ingest(ws, gt=data / "gt.json", predictions=[(data / "predictions.json", "bench")])
        metric_tables(ws, "bench")  # the metrics without pixels: kernels compiled, outcomes aside
        set_images_folder(Workspace(ws), folder)
        t0 = time.perf_counter()
        tables = metric_tables(ws, "bench")
        seconds = time.perf_counter() - t0
        n = len(tables.images["image_id"])
        print(f"| {args.set} | every metric incl. pixels of {n:,} images, GT and prediction boxes | {seconds:.1f} s |")
        t0 = time.perf_counter()
        result = report(ws, "bench", tmp / "report.html")
        print(f"| {args.set} | report with pictures | {time.perf_counter() - t0:.1f} s, {result.bytes / 1e6:.1f} MB |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
