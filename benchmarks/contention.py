"""Training speed on a shared machine: one epoch of ``snnkit run`` idle and next to a CPU hog.

    python benchmarks/contention.py                  # writes results/contention.json
    python benchmarks/contention.py --grad bptt --repeats 3 --variant default \
        --variant 'libgomp spin=GOMP_SPINCOUNT=300000' --variant 'one thread=OMP_NUM_THREADS=1'

For each variant (a name and environment variables for the training process) the script
times one training epoch (``seconds_per_epoch`` of ``snnkit run --epochs 1 --json``, so
process start-up and data generation are not counted) on the machine as it is, and again
while a background process spins on one core (``while True: pass``). It reports the
median over ``--repeats`` of each, the slowdown (hog / no hog) and the load average
(``os.getloadavg``, what ``uptime`` shows) before each measurement: on a machine shared
with other work the "idle" figures are only as idle as that load says.

``GOMP_SPINCOUNT=300000`` reproduces libgomp's own default waiting (threads spin ~3 ms at
a barrier before sleeping), which ``snnkit`` replaced; ``default`` is what ``snnkit run``
does now. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HOG = "while True: pass"


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """``"name=K1=V1,K2=V2"`` -> ``("name", {"K1": "V1", "K2": "V2"})``; ``"name"`` alone: no env."""
    name, _, rest = text.partition("=")
    env = {}
    for pair in filter(None, rest.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: use NAME=KEY=VALUE[,KEY=VALUE]")
        env[key] = value
    return name, env


def epoch_seconds(env: dict[str, str], run_args: list[str], work: Path) -> float:
    """``seconds_per_epoch`` of one fresh ``snnkit run --epochs 1`` with ``env`` added."""
    out = work / "run.json"
    for path in (out, work / "r.db"):
        path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "snnkit.cli",
        "run",
        "--epochs",
        "1",
        "--no-progress",
        "--db",
        str(work / "r.db"),
        "--out",
        str(work / f"ckpt-{time.monotonic_ns()}"),
        "--json",
        str(out),
        *run_args,
    ]
    child_env = {**os.environ, **env}
    done = subprocess.run(cmd, env=child_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"snnkit run failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(out.read_text())["seconds_per_epoch"]


def measure(env, run_args, work, repeats: int, hog: bool) -> dict:
    load = os.getloadavg()
    spinner = subprocess.Popen([sys.executable, "-c", HOG]) if hog else None
    try:
        if spinner is not None:
            time.sleep(1.0)  # let the hog reach the scheduler's steady state
        times = [epoch_seconds(env, run_args, work) for _ in range(repeats)]
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return {"seconds_per_epoch": statistics.median(times), "all": times, "load_before": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grad", default="exodus", help="gradient method (default exodus)")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per condition")
    parser.add_argument(
        "--variant",
        action="append",
        type=_variant,
        help="NAME=KEY=VALUE[,KEY=VALUE]: environment for the run (repeatable)",
    )
    parser.add_argument(
        "--run-arg", action="append", default=[], help="extra `snnkit run` argument (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "contention.json")
    args = parser.parse_args()
    variants = args.variant or [
        ("libgomp default spin", {"GOMP_SPINCOUNT": "300000"}),
        ("default", {}),
    ]
    run_args = ["--grad", args.grad, *args.run_arg]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in variants:
            idle = measure(env, run_args, Path(tmp), args.repeats, hog=False)
            busy = measure(env, run_args, Path(tmp), args.repeats, hog=True)
            slowdown = busy["seconds_per_epoch"] / idle["seconds_per_epoch"]
            rows.append(
                {"variant": name, "env": env, "idle": idle, "hog": busy, "slowdown": slowdown}
            )
            print(
                f"{name:24s} idle {idle['seconds_per_epoch']:7.2f} s (load {idle['load_before'][0]:.2f})"
                f"  hog {busy['seconds_per_epoch']:7.2f} s (load {busy['load_before'][0]:.2f})"
                f"  slowdown {slowdown:5.2f}x",
                flush=True,
            )
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": sorted(os.sched_getaffinity(0)),
        "run_args": run_args,
        "repeats": args.repeats,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
