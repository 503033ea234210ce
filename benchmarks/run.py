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
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
PY = sys.executable
ODFAIL = [PY, "-m", "odfail"]
PEERS = ["ultrafast", "hotcoco", "faster-coco-eval", "pycocotools"]
SETS = {"5k": (5000, 0), "50k": (50000, 1)}
# What every `odfail evaluate` process pays before it reads a row: Python, numpy, DuckDB, numba and the cached bbox
# kernels (no CLI, no work). Beside a peer's whole evaluation it bounds the best whole-process ratio reachable.
FLOOR = [PY, "-c", "import duckdb; from odfail.evaluate.coco import _warm_kernels; _warm_kernels('bbox')"]


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


def side_by_side(entries: list[tuple[str, list[str], Callable[[], object] | None, int]], repeat: int
                 ) -> dict[str, tuple[float, float, str, float]]:
    """Whole-process timings of several tools on one task, interleaved: round r runs, one after the other,
    every tool that still has runs to make (entry: name, command, what to do before each run, how many runs),
    so that a slow spell of the machine (the same process varies by 10-20% over minutes on this VM) hits all
    alike. Returns name -> (median seconds, peak MiB, stdout of its last run, median CPU seconds)."""
    runs: dict[str, list] = {name: [] for name, *_ in entries}
    for r in range(repeat):
        for name, cmd, before, times in entries:
            if r < times:
                if before:
                    before()
                runs[name].append(timed(cmd))
    return {name: (statistics.median(x[0] for x in rs), max(x[1] for x in rs), rs[-1][2],
                   statistics.median(x[3] for x in rs)) for name, rs in runs.items()}


def inproc_side_by_side(entries: list[tuple[str, list[str], int]], repeat: int) -> dict[str, list[float]]:
    """In-process timings, which each script prints (one or more numbers): its process runs ``times`` times,
    interleaved with the others' as in `side_by_side`, and each printed number is the median over those runs
    (one run of a first-call timing is one sample, and varies by ~20% here)."""
    outs: dict[str, list] = {name: [] for name, _, _ in entries}
    for r in range(repeat):
        for name, cmd, times in entries:
            if r < times:
                outs[name].append([float(v) for v in timed(cmd)[2].split()])
    return {name: [statistics.median(col) for col in zip(*vals)] for name, vals in outs.items()}


INPROC = [PY, str(ROOT / "benchmarks" / "inproc_odfail.py")]


def runs(peer: str, repeat: int, once: str = "pycocotools") -> int:
    """How many runs a peer gets: the slow one (pycocotools whole, faster-coco-eval in-process) runs once."""
    return 1 if peer == once else repeat


def peer_cmd(peer: str, mode: str, gt: Path, dt: Path, *extra: str) -> list[str]:
    return [PY, str(ROOT / "benchmarks" / "peers.py"), peer, mode, str(gt), str(dt), *extra]


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

    def reingest() -> None:
        subprocess.run(fresh_ingest(ws, gt, dt), check=True, capture_output=True)

    task = "load / ingest (process)"
    res = side_by_side([("odfail ingest", fresh_ingest(ws, gt, dt), lambda: shutil.rmtree(ws, ignore_errors=True),
                         repeat)] + [(p, peer_cmd(p, "load", gt, dt), None, runs(p, repeat)) for p in peers], repeat)
    for tool, (s, mem, _, cpu) in res.items():
        rows.append({"set": name, "task": task, "tool": tool, "s": s, "mib": mem, "cpu": cpu})

    task = "evaluate (process)"
    eval_cmd = ODFAIL + ["evaluate", "-w", str(ws), "--run", "bench", "--format", "json"]
    floor = "odfail start-up floor (imports + cached kernels, no work)"
    res = side_by_side([("odfail evaluate", eval_cmd, reingest, repeat)]
                       + [(p, peer_cmd(p, "eval", gt, dt), None, runs(p, repeat)) for p in peers]
                       + [(floor, FLOOR, None, repeat)], repeat)
    for tool, (s, mem, out, cpu) in res.items():
        row = {"set": name, "task": task, "tool": tool, "s": s, "mib": mem, "cpu": cpu}
        if tool == "odfail evaluate":
            row["AP"] = json.loads(out)["coco"]["AP"]
        elif tool != floor:
            row["AP"] = float(out.strip().splitlines()[-1])
        rows.append(row)

    res = inproc_side_by_side([("odfail", INPROC + [str(ws), "bench"], repeat)]
                              + [(p, peer_cmd(p, "inproc", gt, dt), runs(p, repeat, "faster-coco-eval"))
                                 for p in peers if p != "pycocotools"], repeat)
    for tool, (s,) in res.items():
        rows.append({"set": name, "task": "evaluate+accumulate (in-process)", "tool": tool, "s": s})
    return rows


def bench_errors(name: str, repeat: int) -> list[dict]:
    """TIDE errors: `odfail errors` against hotcoco (load + evaluate + tide_errors) and tidecv, whole processes;
    then the taxonomy and dAP alone, in-process, against hotcoco's tide_errors call."""
    gt, dt = make_data(name)
    ws = DATA / f"ws-{name}"
    rows = []
    cmd = ODFAIL + ["errors", "-w", str(ws), "--run", "bench", "--format", "json"]
    subprocess.run(fresh_ingest(ws, gt, dt), check=True, capture_output=True)
    subprocess.run(cmd, check=True, capture_output=True)  # warm the page cache and the numba cache, untimed
    task = "TIDE errors (process)"
    res = side_by_side([("odfail errors", cmd, lambda: subprocess.run(fresh_ingest(ws, gt, dt), check=True,
                                                                      capture_output=True), repeat),
                        ("hotcoco", peer_cmd("hotcoco", "tide", gt, dt), None, repeat),
                        ("tidecv", peer_cmd("tidecv", "tide", gt, dt), None, 1)], repeat)
    for tool, (s, mem, out, cpu) in res.items():
        d_cls = json.loads(out)["dAP"]["Cls"] if tool == "odfail errors" else float(out.strip().splitlines()[-1])
        rows.append({"set": name, "task": task, "tool": tool, "s": s, "mib": mem, "cpu": cpu, "ref": "hotcoco",
                     "dCls": d_cls})
    res = inproc_side_by_side([("odfail", INPROC + [str(ws), "bench", "errors"], repeat),
                               ("hotcoco", peer_cmd("hotcoco", "tide-inproc", gt, dt), repeat)], repeat)
    (first, best), (h_first, h_best) = res["odfail"], res["hotcoco"]
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
    task, stored = "segm evaluate (process)", "segm evaluate (process), masks stored"
    tool = "odfail evaluate --iou-type segm"
    # each round: a fresh workspace's first evaluation (it converts and stores every mask), then a second
    # evaluation of it (reads the stored masks), then the peers
    res = side_by_side([(tool, cmd, lambda: subprocess.run(fresh_ingest(ws, gt, dt), check=True,
                                                           capture_output=True), repeat),
                        (stored, cmd, None, repeat)]
                       + [(p, peer_cmd(p, "eval", gt, dt, "segm"), None, runs(p, repeat))
                          for p in peers], repeat)
    for key, (s, mem, out, cpu) in res.items():
        ap = json.loads(out)["coco"]["AP"] if key in (tool, stored) else float(out.strip().splitlines()[-1])
        rows.append({"set": name, "task": stored if key == stored else task, "tool": tool if key == stored else key,
                     "s": s, "mib": mem, "cpu": cpu, "AP": ap, "ref": "ultrafast"})
    rows.append({**next(r for r in rows if r["task"] == task and r["tool"] == "ultrafast"), "task": stored})
    task = "segm evaluate+accumulate (in-process)"
    odfail = "odfail (masks stored by an earlier evaluation; decoding included)"
    res = inproc_side_by_side([(odfail, INPROC + [str(ws), "bench", "segm"], repeat)]
                              + [(p, peer_cmd(p, "inproc", gt, dt, "segm"), runs(p, repeat, "faster-coco-eval"))
                                 for p in peers if p != "pycocotools"], repeat)
    for tool, (s,) in res.items():
        rows.append({"set": name, "task": task, "tool": tool, "s": s, "ref": "ultrafast"})
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
    # odfail is installed editable and this machine sets PYTHONDONTWRITEBYTECODE=1, so without this every odfail
    # process would compile odfail's sources first (~30 ms); the pip-installed peers come byte-compiled, and so
    # does odfail installed from a wheel, or run once anywhere Python may write its cache.
    compileall.compile_dir(str(ROOT / "odfail"), quiet=1)
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
