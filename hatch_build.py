"""Wheel build hook: compile odfail's numba kernels once, for a generic x86-64 CPU, and ship the machine code.

A fresh install then answers at once: numba finds each kernel's code in its ``__pycache__`` (its cache checks
the source file's content hash, the function's bytecode, the Python version and the CPU name; all of them travel
with the wheel). The kernels are compiled by running odfail's commands on a small generated set, in a copy of
the package, so that the developer's own caches never end up in a wheel; the copy is kept in the temporary
folder under a hash of the sources, since pip builds a wheel twice (once for its metadata). Editable installs
compile lazily, as numba always does.

Set ODFAIL_WHEEL_KERNELS=0 to build a wheel without them (it then compiles on first use).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

WORKLOAD = r"""
import json, sys
from pathlib import Path
import odfail
from odfail.synth import generate
from odfail.analysis import by_metric, calibration, classes, compare, distribution, metrics
from odfail.match.outcomes import outcomes

tmp = Path(sys.argv[1])
generate(tmp / "data", images=60, seed=0, masks=True)
preds = json.loads((tmp / "data" / "predictions.json").read_text())
(tmp / "half.json").write_text(json.dumps(preds[::2]))
ws = tmp / "ws"
odfail.ingest(ws, gt=tmp / "data" / "gt.json", predictions=[(tmp / "data" / "predictions.json", "r"),
                                                         (tmp / "half.json", "h")])
for run in ("r", "h"):
    odfail.evaluate(ws, run)
    odfail.evaluate(ws, run, iou_type="segm")
    odfail.errors(ws, run)
    odfail.errors(ws, run, iou_type="segm")
    odfail.confusion(ws, run)
    metrics.metric_tables(ws, run)
    by_metric.importance(ws, run)
    by_metric.by_metric(ws, run, "height")
    by_metric.outliers(ws, run, "width")
    classes.per_class(ws, run)
    calibration.calibration(ws, run, per_class=True)
outcomes(odfail.Workspace(ws), "r", (0.33,))
compare.compare(ws, "h", "r")
distribution.distribution(ws, "r")
"""


class KernelCacheHook(BuildHookInterface):
    PLUGIN_NAME = "odfail-kernels"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable" or os.environ.get("ODFAIL_WHEEL_KERNELS") == "0":
            return
        root = Path(self.root)
        # pip builds the wheel twice (once for its metadata): the kernels are compiled once per source state
        digest = hashlib.sha256(sys.version.encode())
        for path in sorted((root / "odfail").rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        work = Path(tempfile.gettempdir()) / f"odfail-wheel-kernels-{digest.hexdigest()[:16]}"
        package = work / "src" / "odfail"
        if not (work / "done").exists():
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(root / "odfail", package, ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copytree(root / "sql", work / "src" / "sql")
            # pip's isolated build environment reaches its packages through PYTHONPATH: keep it behind the copy
            path = os.pathsep.join(p for p in (str(work / "src"), os.environ.get("PYTHONPATH", "")) if p)
            env = {**os.environ, "PYTHONPATH": path, "NUMBA_CPU_NAME": "generic", "OPENBLAS_NUM_THREADS": "1"}
            env.pop("NUMBA_CACHE_DIR", None)
            env.pop("NUMBA_CPU_FEATURES", None)
            self.app.display_info("odfail: compiling the numba kernels into the wheel (minutes, once per build)")
            subprocess.run([sys.executable, "-c", WORKLOAD, str(work / "data")], env=env, check=True, cwd=work)
            (work / "done").touch()
        shipped = 0
        for path in package.rglob("__pycache__/*"):
            if path.suffix in (".nbi", ".nbc") or path.name == "odfail-kernels.stamp":
                rel = path.relative_to(package)
                build_data["force_include"][str(path)] = f"odfail/{rel.as_posix()}"
                shipped += 1
        self.app.display_info(f"odfail: {shipped} compiled kernel files in the wheel")

