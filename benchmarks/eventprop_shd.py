"""Seconds per training epoch and peak memory at SHD scale: EventProp against EXODUS and BPTT.

    python benchmarks/eventprop_shd.py                 # 2 timed batches per method
    python benchmarks/eventprop_shd.py --batches 5 --methods eventprop exodus
    python benchmarks/eventprop_shd.py --batches 1 --parallel  # all methods at once
    python benchmarks/eventprop_shd.py --data DIR --methods eventprop-grid \
        --checkpoint eventprop-grid=RUN/checkpoint.pt     # at trained weights (higher rates)

The paper's SHD network and data pipeline, the defaults of ``snnkit run --dataset shd``
(snnkit/data/neuromorphic.py: 7000 delay-line inputs, 256 recurrent LIF neurons, 20 LI
outputs, batch 32, shift and blend augmentation, input weights scaled to ~10 Hz at the
start), on synthetic SHD-format recordings of the real scale (benchmarks/synthetic_shd.py:
700 channels, ~0.8 s and ~8000 spikes per recording). Methods: ``eventprop`` (event-exact,
``--layer-opt mode=exact``, the compiled CPU kernels), ``eventprop-grid`` (the recipe's
default: grid mode at the paper's dt = 1 ms), ``exodus`` and ``bptt`` (time-stepped at the
same dt).

Each method runs in its own process: the Trainer is built (data loaded, weights scaled),
then ``--batches`` training batches are timed, wall clock and process CPU time, the input
batch's construction (read from the cache, augmented, delay line, padded spike times or a
raster) apart from the step (forward, backward, Adam step); an epoch (8156 recordings = 255
batches) is extrapolated from the mean of both together. Peak memory is the process's peak resident set size (data loading and weight
calibration included) and, per training step, the peak over the memory resident before it
(the kernel's peak count is reset before the batch is built: the input batch, the state
kept for the backward pass, the gradients). ``--parallel`` starts the methods' processes together (on a
loaded machine the CPU seconds, not the wall clock, are then the figures to compare).
One run on this machine; the load average is recorded. Writes
``benchmarks/results/eventprop_shd.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
TRAIN_RECORDINGS = 8156
METHODS = {
    "eventprop": {"grad": "eventprop", "layer_options": {"mode": "exact"}},
    "eventprop-grid": {"grad": "eventprop", "layer_options": {"mode": "grid", "dt": 1.0}},
    "exodus": {"grad": "exodus"},
    "bptt": {"grad": "bptt"},
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last :func:`_reset_peak`) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Restart the kernel's peak-RSS count (Linux >= 4.0: ``5`` to ``clear_refs``), so that
    a training step's peak is measured on its own, not the data loading's before it."""
    Path("/proc/self/clear_refs").write_text("5")


def one(method: str, root: Path, batches: int, threads: int, checkpoint: Path | None) -> dict:
    """Time ``batches`` training batches of ``method`` in this process (from the weights of
    a ``snnkit run`` checkpoint of the same network, if given)."""
    import torch

    from snnkit.train import RunConfig, Trainer

    torch.set_num_threads(threads)
    config = RunConfig(dataset="shd", data_dir=str(root), epochs=1, **METHODS[method])
    start = time.perf_counter()
    trainer = Trainer(config)
    if checkpoint is not None:
        trainer.load(checkpoint)
    setup = time.perf_counter() - start
    n = batches * trainer.config.batch_size
    index = torch.randperm(len(trainer.data["train"]), generator=torch.Generator().manual_seed(0))
    before = _rss_mb()
    walls, cpus, data_walls, data_cpus = [], [], [], []
    spikes, step_peaks, step_growth = [], [], []
    for part in index[:n].split(trainer.config.batch_size):
        resident = _status_mb("VmRSS")
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = trainer.batch("train", part)
        data_walls.append(time.perf_counter() - t0)
        data_cpus.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.model.reset_state()
        output, hidden = trainer.outputs(trainer.model(x))
        loss = trainer.loss(output, y)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        rates, _ = trainer.kind.spike_stats(hidden)
        spikes.append(rates[0] * 1000.0 / trainer.config.dt)
        del x, output, hidden, loss
        step_peaks.append(_status_mb("VmHWM"))
        step_growth.append(step_peaks[-1] - resident)
    per_epoch = math.ceil(TRAIN_RECORDINGS / trainer.config.batch_size)
    return {
        "method": method,
        "network": trainer.config.arch,
        "inputs": trainer.data["train"].num_inputs,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "batch_size": trainer.config.batch_size,
        "setup_seconds": setup,
        "initial_hidden_rate_hz": trainer.initial_rate,
        "hidden_rate_hz": spikes,
        "batch_seconds": walls,
        "batch_cpu_seconds": cpus,
        "data_seconds": data_walls,
        "data_cpu_seconds": data_cpus,
        "epoch_seconds_extrapolated": per_epoch * (sum(walls) + sum(data_walls)) / len(walls),
        "epoch_cpu_seconds_extrapolated": per_epoch * (sum(cpus) + sum(data_cpus)) / len(cpus),
        "peak_rss_mb": _rss_mb(),
        "rss_before_training_mb": before,
        "training_rss_growth_mb": _rss_mb() - before,
        "step_peak_rss_mb": max(step_peaks),
        "step_rss_growth_mb": max(step_growth),
    }


def _collect(method: str, proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        print(f"{method}: failed: {err.strip().splitlines()[-1:]}", flush=True)
        return {"method": method, "error": err.strip().splitlines()[-1:]}
    r = json.loads(out.strip().splitlines()[-1])
    step, data = (sum(r[k]) / len(r[k]) for k in ("batch_cpu_seconds", "data_cpu_seconds"))
    print(
        f"{method}: a batch {step:.2f} CPU s + {data:.2f} to build it; "
        f"{r['epoch_seconds_extrapolated']:.0f} s/epoch "
        f"({r['epoch_cpu_seconds_extrapolated']:.0f} CPU s), peak {r['peak_rss_mb']:.0f} MB "
        f"(+{r['training_rss_growth_mb']:.0f} MB training); a training step: peak "
        f"{r['step_peak_rss_mb']:.0f} MB, +{r['step_rss_growth_mb']:.0f} MB over the "
        "resident memory before it, hidden "
        f"{sum(r['hidden_rate_hz']) / len(r['hidden_rate_hz']):.1f} Hz",
        flush=True,
    )
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP CPU threads")
    parser.add_argument("--data", type=Path, help="an SHD folder to use (default: synthetic)")
    parser.add_argument("--parallel", action="store_true", help="run the methods together")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="METHOD=PATH",
        help="start METHOD from a snnkit run checkpoint (e.g. trained weights, higher rates)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--from-checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_shd.json")
    args = parser.parse_args(argv)
    if args.one:
        result = one(args.one, args.data, args.batches, args.threads, args.from_checkpoint)
        print(json.dumps(result))
        return 0
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint if "=" in item)
    if len(checkpoints) != len(args.checkpoint) or set(checkpoints) - set(args.methods):
        parser.error("--checkpoint takes METHOD=PATH, METHOD one of the --methods")
    sys.path.insert(0, str(HERE))
    import synthetic_shd

    from snnkit.bench import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        stats = None
        if root is None:
            root = Path(tmp)
            stats = synthetic_shd.write(root, args.batches * 32 + 32, 64)
        info = machine_info("cpu")
        procs = {}
        for method in args.methods:
            cmd = [sys.executable, __file__, "--one", method, "--data", str(root),
                   "--batches", str(args.batches), "--threads", str(args.threads)]  # fmt: skip
            if method in checkpoints:
                cmd += ["--from-checkpoint", checkpoints[method]]
            procs[method] = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            if not args.parallel:
                procs[method].wait()
        runs = [_collect(method, proc) for method, proc in procs.items()]
    report = {
        "command": " ".join(["python", "benchmarks/eventprop_shd.py", *(argv or sys.argv[1:])]),
        "machine": info,
        "load_average_after": machine_info("cpu").get("load_average"),
        "data": stats or str(args.data),
        "extrapolated_from_batches": args.batches,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
