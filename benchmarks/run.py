"""odfail against its peers, side by side in one run, on seeded COCO-like data.

    python benchmarks/run.py [--sets 5k,50k] [--errors-sets 5k] [--segm-sets 5k] [--repeat 3] [--slow-peers-max 5000]

Every timing is a whole process (what a user waits for: imports, loading, work, exit), median of --repeat runs,
with the child's peak RSS from wait4, unless the task says in-process. Ratios are odfail / the fastest peer:
ultrafast-pycocotools for loading and COCO evaluation, hotcoco for TIDE errors.
`odfail evaluate` and `odfail errors` run on a freshly ingested workspace each time (no earlier match tables
to reuse) and write their match tables; the numba kernels come from the on-disk cache, as in any run after the
first.
Results go to stdout and to bench-data/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
PY = sys.executable
ODFAIL = [PY, "-m", "odfail"]
PEERS = ["ultrafast", "hotcoco", "faster-coco-eval", "pycocotools"]
SETS = {"5k": (5000, 0), "50k": (50000, 1)}
# What every `odfail evaluate` process pays before it reads a row: Python, numpy, DuckDB, numba and the cached bbox
# kernels (no CLI, no work). Beside a peer's whole evaluation it bounds the best whole-process ratio reachable.
FLOOR = [PY, "-c", "import duckdb; from odfail.evaluate import _warm_kernels; _warm_kernels('bbox')"]


def timed(cmd: list[str]) -> tuple[float, float, str, float]:
    """Seconds, peak RSS in MiB, stdout, and CPU seconds (user + system: on 2 cores, wall time hides how much
    of both a tool keeps busy) of one process."""
    import tempfile

    # files, not pipes: wait4 (for the child's own peak RSS) must not wait on a child blocked on a full pipe
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()}")
        return seconds, usage.ru_maxrss / 1024, out.read(), usage.ru_utime + usage.ru_stime


def median_of(cmds, repeat: int, before=None) -> tuple[float, float, str, float]:
    runs = []
    for _ in range(repeat):
        if before:
            before()
        runs.append(timed(cmds))
    return (statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2],
            statistics.median(r[3] for r in runs))


def make_data(name: str, masks: bool = False) -> tuple[Path, Path]:
    images, seed = SETS[name]
    out = DATA / (name + ("-masks" if masks else ""))
    if not (out / "predictions.json").exists():
        print(f"generating {out.name} set ({images:,} images, seed {seed})...", flush=True)
        subprocess.run(ODFAIL + ["synth", str(out), "--images", str(images), "--seed", str(seed)]
                       + (["--masks"] if masks else []), check=True)
    return out / "gt.json", out / "predictions.json"


def fresh_ingest(ws: Path, gt: Path, dt: Path) -> list[str]:
    shutil.rmtree(ws, ignore_errors=True)
    return ODFAIL + ["ingest", "-w", str(ws), "--gt", str(gt), "--pred", str(dt), "--run", "bench"]


def bench_set(name: str, repeat: int, slow_max: int) -> list[dict]:
    gt, dt = make_data(name)
    ws = DATA / f"ws-{name}"
    images = SETS[name][0]
    peers = [p for p in PEERS if p in ("ultrafast", "hotcoco") or images <= slow_max]
    rows = []
    # warm the OS page cache and the numba cache once, untimed
    subprocess.run(fresh_ingest(ws, gt, dt), check=True, capture_output=True)
    subprocess.run(ODFAIL + ["evaluate", "-w", str(ws), "--run", "bench"], check=True, capture_output=True)

    def ingest_cmd():
        return fresh_ingest(ws, gt, dt)

    s, mem, _, cpu = median_of(ingest_cmd(), repeat, before=lambda: shutil.rmtree(ws, ignore_errors=True))
    rows.append({"set": name, "task": "load / ingest (process)", "tool": "odfail ingest", "s": s, "mib": mem,
                 "cpu": cpu})
    for peer in peers:
        s, mem, _, cpu = median_of([PY, str(ROOT / "benchmarks" / "peers.py"), peer, "load", str(gt), str(dt)],
                                   1 if peer == "pycocotools" else repeat)
        rows.append({"set": name, "task": "load / ingest (process)", "tool": peer, "s": s, "mib": mem, "cpu": cpu})

    eval_cmd = ODFAIL + ["evaluate", "-w", str(ws), "--run", "bench", "--format", "json"]
    s, mem, out, cpu = median_of(eval_cmd, repeat,
                                 before=lambda: subprocess.run(ingest_cmd(), check=True, capture_output=True))
    ap = json.loads(out)["coco"]["AP"]
    rows.append({"set": name, "task": "evaluate (process)", "tool": "odfail evaluate", "s": s, "mib": mem, "cpu": cpu,
                 "AP": ap})
    for peer in peers:
        s, mem, out, cpu = median_of([PY, str(ROOT / "benchmarks" / "peers.py"), peer, "eval", str(gt), str(dt)],
                                     1 if peer == "pycocotools" else repeat)
        rows.append({"set": name, "task": "evaluate (process)", "tool": peer, "s": s, "mib": mem, "cpu": cpu,
                     "AP": float(out.strip().splitlines()[-1])})
    s, mem, _, cpu = median_of(FLOOR, max(repeat, 5))
    rows.append({"set": name, "task": "evaluate (process)", "tool": "odfail start-up floor (imports + cached "
                 "kernels, no work)", "s": s, "mib": mem, "cpu": cpu})

    _, _, out, _ = timed([PY, str(ROOT / "benchmarks" / "inproc_odfail.py"), str(ws), "bench"])
    rows.append({"set": name, "task": "evaluate+accumulate (in-process)", "tool": "odfail", "s": float(out)})
    for peer in [p for p in peers if p != "pycocotools"]:
        _, _, out, _ = timed([PY, str(ROOT / "benchmarks" / "peers.py"), peer, "inproc", str(gt), str(dt)])
        rows.append({"set": name, "task": "evaluate+accumulate (in-process)", "tool": peer, "s": float(out)})
    return rows


def bench_errors(name: str, repeat: int) -> list[dict]:
    """TIDE errors: `odfail errors` against hotcoco (load + evaluate + tide_errors) and tidecv, whole processes;
    then the taxonomy and dAP alone, in-process, against hotcoco's tide_errors call."""
    gt, dt = make_data(name)
    ws = DATA / f"ws-{name}"
    peers = [PY, str(ROOT / "benchmarks" / "peers.py")]
    rows = []
    cmd = ODFAIL + ["errors", "-w", str(ws), "--run", "bench", "--format", "json"]
    subprocess.run(fresh_ingest(ws, gt, dt), check=True, capture_output=True)
    subprocess.run(cmd, check=True, capture_output=True)  # warm the page cache and the numba cache, untimed
    s, mem, out, cpu = median_of(cmd, repeat,
                                 before=lambda: subprocess.run(fresh_ingest(ws, gt, dt), check=True,
                                                               capture_output=True))
    task = "TIDE errors (process)"
    rows.append({"set": name, "task": task, "tool": "odfail errors", "s": s, "mib": mem, "cpu": cpu, "ref": "hotcoco",
                 "dCls": json.loads(out)["dAP"]["Cls"]})
    for peer in ("hotcoco", "tidecv"):
        s, mem, out, cpu = median_of(peers + [peer, "tide", str(gt), str(dt)], repeat if peer == "hotcoco" else 1)
        rows.append({"set": name, "task": task, "tool": peer, "s": s, "mib": mem, "cpu": cpu, "ref": "hotcoco",
                     "dCls": float(out.strip().splitlines()[-1])})
    _, _, out, _ = timed([PY, str(ROOT / "benchmarks" / "inproc_odfail.py"), str(ws), "bench", "errors"])
    first, best = map(float, out.split())
    _, _, out, _ = timed(peers + ["hotcoco", "tide-inproc", str(gt), str(dt)])
    h_first, h_best = map(float, out.split())
    for task, ours, theirs in (("TIDE errors, first call (in-process)", first, h_first),
                               ("TIDE errors, repeated call (in-process)", best, h_best)):
        rows.append({"set": name, "task": task, "tool": "odfail", "s": ours, "ref": "hotcoco"})
        rows.append({"set": name, "task": task, "tool": "hotcoco", "s": theirs, "ref": "hotcoco"})
    return rows


def bench_segm(name: str, repeat: int, slow_max: int) -> list[dict]:
    """Mask evaluation (iouType segm) on a generated set whose predictions carry RLE masks."""
    gt, dt = make_data(name, masks=True)
    ws = DATA / f"ws-{name}-masks"
    peers = [p for p in PEERS if p in ("ultrafast", "hotcoco") or SETS[name][0] <= slow_max]
    cmd = ODFAIL + ["evaluate", "-w", str(ws), "--run", "bench", "--iou-type", "segm", "--format", "json"]
    subprocess.run(fresh_ingest(ws, gt, dt), check=True, capture_output=True)
    subprocess.run(cmd, check=True, capture_output=True)  # warm caches, untimed
    rows = []
    task = "segm evaluate (process)"
    s, mem, out, cpu = median_of(cmd, repeat,
                                 before=lambda: subprocess.run(fresh_ingest(ws, gt, dt), check=True,
                                                               capture_output=True))
    rows.append({"set": name, "task": task, "tool": "odfail evaluate --iou-type segm", "s": s, "mib": mem, "cpu": cpu,
                 "AP": json.loads(out)["coco"]["AP"], "ref": "ultrafast"})
    for peer in peers:
        s, mem, out, cpu = median_of([PY, str(ROOT / "benchmarks" / "peers.py"), peer, "eval", str(gt), str(dt),
                                      "segm"], 1 if peer == "pycocotools" else repeat)
        rows.append({"set": name, "task": task, "tool": peer, "s": s, "mib": mem, "cpu": cpu, "ref": "ultrafast",
                     "AP": float(out.strip().splitlines()[-1])})
    # a second evaluation of the same workspace reads the masks the first one stored
    s, mem, out, cpu = median_of(cmd, repeat)
    rows.append({"set": name, "task": "segm evaluate (process), masks stored", "s": s, "mib": mem, "cpu": cpu,
                 "tool": "odfail evaluate --iou-type segm", "AP": json.loads(out)["coco"]["AP"], "ref": "ultrafast"})
    rows.append({**next(r for r in rows if r["task"] == task and r["tool"] == "ultrafast"),
                 "task": "segm evaluate (process), masks stored"})
    task = "segm evaluate+accumulate (in-process)"
    _, _, out, _ = timed([PY, str(ROOT / "benchmarks" / "inproc_odfail.py"), str(ws), "bench", "segm"])
    rows.append({"set": name, "task": task, "s": float(out),
                 "tool": "odfail (masks stored by an earlier evaluation; decoding included)",
                 "ref": "ultrafast"})
    for peer in [p for p in peers if p != "pycocotools"]:
        _, _, out, _ = timed([PY, str(ROOT / "benchmarks" / "peers.py"), peer, "inproc", str(gt), str(dt), "segm"])
        rows.append({"set": name, "task": task, "tool": peer, "s": float(out), "ref": "ultrafast"})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| set | task | tool | seconds | CPU s | peak MiB | ratio to fastest peer | ratio (memory) "
             "| AP / dAP Cls |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ref = next(x for x in rows if x["set"] == r["set"] and x["task"] == r["task"]
                   and x["tool"] == r.get("ref", "ultrafast"))
        mem = f"{r['mib']:.0f}" if "mib" in r else ""
        mem_ratio = f"{r['mib'] / ref['mib']:.2f}x" if "mib" in r else ""
        ap = f"{r['AP']:.6f}" if "AP" in r else (f"{r['dCls']:.6f}" if "dCls" in r else "")
        cpu = f"{r['cpu']:.2f}" if "cpu" in r else ""
        lines.append(f"| {r['set']} | {r['task']} | {r['tool']} | {r['s']:.3f} | {cpu} | {mem} "
                     f"| {r['s'] / ref['s']:.2f}x "
                     f"| {mem_ratio} | {ap} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="5k,50k")
    ap.add_argument("--errors-sets", default="5k", help="sets for the TIDE errors benchmark ('' to skip)")
    ap.add_argument("--segm-sets", default="5k", help="sets for the mask (segm) benchmark ('' to skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slow-peers-max", type=int, default=5000,
                    help="skip pycocotools and faster-coco-eval on larger sets (13-90x slower than ultrafast here)")
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    rows = []
    for name in filter(None, args.sets.split(",")):
        rows += bench_set(name, args.repeat, args.slow_peers_max)
        print(table(rows), flush=True)
    for name in filter(None, args.errors_sets.split(",")):
        rows += bench_errors(name, args.repeat)
        print(table(rows), flush=True)
    for name in filter(None, args.segm_sets.split(",")):
        rows += bench_segm(name, args.repeat, args.slow_peers_max)
        print(table(rows), flush=True)
    import platform

    header = (f"machine: {os.cpu_count()} cores, {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}; median of {args.repeat} whole-process runs\n\n")
    (DATA / "results.md").write_text(header + table(rows) + "\n")
    print(f"\nwritten to {DATA / 'results.md'}")


if __name__ == "__main__":
    main()
