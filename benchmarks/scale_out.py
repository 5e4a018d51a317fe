"""Scaling out on this machine: one run over 1 vs 2 gloo processes, a grid local vs pool vs Ray.

    python benchmarks/scale_out.py                   # writes results/scale_out.json
    python benchmarks/scale_out.py --only ddp --epochs 3

1. DDP throughput: ``snnkit run`` with the default recipe (Yin-Yang, 5000 training
   samples, 200 hidden LIF, global batch 32, BPTT unless ``--grad``) in one process and
   with ``--nproc 2``; training samples per second = 5000 / the seconds of the last
   epoch's batches (``seconds_per_epoch`` history, so start-up, data generation and
   evaluation are not counted). One process uses the CPUs it may use as threads; two
   processes get half of them each (the defaults a user gets).
2. Grid wall time: ``snnkit leaderboard run`` of 2 methods x 2 seeds (Yin-Yang with
   ``--data-opt size=S``, ``--epochs E``), end to end as a user waits for it, one after
   another in one process, with ``--jobs 2``, and with ``--executor ray`` (a new local
   Ray cluster of this machine's CPUs, its start-up included).

The load average (``os.getloadavg``) is recorded before each measurement: on a shared
machine the figures are only as good as that load says. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _snnkit(*args: str, cwd: Path) -> float:
    """Run ``snnkit ARGS``; its wall time in seconds (a failure stops the benchmark)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "snnkit", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"snnkit {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def ddp(grad: str, epochs: int, nproc: int, work: Path) -> dict:
    out = work / f"ddp-{nproc}"
    load = os.getloadavg()
    wall = _snnkit(
        "run", "--grad", grad, "--epochs", str(epochs), "--no-progress", "--db",
        str(out) + ".db", "--out", str(out), "--json", str(out) + ".json",
        *(["--nproc", str(nproc)] if nproc > 1 else []), cwd=work,
    )  # fmt: skip
    summary = json.loads(Path(str(out) + ".json").read_text())
    last = summary["history"][-1]
    return {
        "processes": nproc,
        "grad": grad,
        "seconds_last_epoch": last["seconds"],
        "samples_per_second": 5000 / last["seconds"],
        "test_accuracy": summary["test_accuracy"],
        "wall_seconds": wall,
        "loadavg_before": load,
    }


def grid(executor: str, size: int, epochs: int, work: Path) -> dict:
    out = work / f"grid-{executor}"
    extra = {"local": [], "jobs2": ["--jobs", "2"], "ray": ["--executor", "ray"]}[executor]
    load = os.getloadavg()
    wall = _snnkit(
        "leaderboard", "run", "--grad", "bptt", "--grad", "exodus", "--seeds", "2",
        "--epochs", str(epochs), "--data-opt", f"size={size}", "--no-progress",
        "--db", str(out) + ".db", "--out", str(out), *extra, cwd=work,
    )  # fmt: skip
    return {"executor": executor, "cells": 4, "wall_seconds": wall, "loadavg_before": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grad", default="bptt")
    parser.add_argument("--epochs", type=int, default=2, help="DDP runs' epochs (last timed)")
    parser.add_argument("--grid-size", type=int, default=500, help="Yin-Yang samples per split")
    parser.add_argument("--grid-epochs", type=int, default=3)
    parser.add_argument("--only", choices=("ddp", "grid"))
    parser.add_argument("--out", type=Path, default=RESULTS / "scale_out.json")
    args = parser.parse_args()
    report = {"cpus": len(os.sched_getaffinity(0)), "ddp": [], "grid": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only != "grid":
            for nproc in (1, 2):
                report["ddp"].append(row := ddp(args.grad, args.epochs, nproc, work))
                print(json.dumps(row), flush=True)
        if args.only != "ddp":
            for executor in ("local", "jobs2", "ray"):
                report["grid"].append(row := grid(executor, args.grid_size, args.grid_epochs, work))
                print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
