"""The first run after an install: a new virtual environment, `pip install` of this repository (a wheel, not
editable), then each command once on a 500-image generated set, as whole processes, and once more (warm).

    python benchmarks/first_run.py

Issue targets: the first ingest, evaluate and errors together <= 15 s; the first segm evaluation <= 10 s. The
figures of the issue (before the wheel carried compiled kernels) are printed beside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = {"ingest": 70.0, "evaluate": 27.2, "errors": 29.2, "evaluate --iou-type segm": 56.4}


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="odfail-first-run-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTHON"))}
    try:
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py, odfail = venv / "bin" / "python", venv / "bin" / "odfail"
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, env=env)
        t_install = run([str(py), "-m", "pip", "install", "-q", str(ROOT)], tmp, env)
        run([str(odfail), "synth", "data", "--images", "500", "--seed", "0", "--masks"], tmp, env)
        steps = [("ingest", ["ingest", "-w", "ws", "--gt", "data/gt.json", "--pred", "data/predictions.json",
                             "--run", "demo"]),
                 ("evaluate", ["evaluate", "-w", "ws", "--run", "demo"]),
                 ("errors", ["errors", "-w", "ws", "--run", "demo"]),
                 ("evaluate --iou-type segm", ["evaluate", "-w", "ws", "--run", "demo", "--iou-type", "segm"])]
        first = {name: run([str(odfail), *args], tmp, env) for name, args in steps}
        shutil.rmtree(tmp / "ws")
        warm = {name: run([str(odfail), *args], tmp, env) for name, args in steps}
        print(f"pip install (builds the wheel, compiling the kernels into it): {t_install:.1f} s")
        print("| first run after install | before (issue) | now | warm |")
        print("|---|---:|---:|---:|")
        for name, _ in steps:
            print(f"| odfail {name} | {BEFORE[name]:.1f} s | {first[name]:.2f} s | {warm[name]:.2f} s |")
        three = sum(first[n] for n in ("ingest", "evaluate", "errors"))
        print(f"| ingest + evaluate + errors | {sum(BEFORE[n] for n in ('ingest', 'evaluate', 'errors')):.1f} s | "
              f"{three:.2f} s (target <= 15 s) | |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
