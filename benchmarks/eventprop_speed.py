"""EventProp on the CPU: compiled kernels vs the torch path, and EventProp vs BPTT.

    python benchmarks/eventprop_speed.py                    # writes results/eventprop_speed.json
    python benchmarks/eventprop_speed.py --threads 1 2 --repeats 20

1. ``batch``: one training step (forward + backward) of Wunderlich & Pehle's 5-200-3
   Yin-Yang network (the dataset's event recipe, spiking readout) on a batch of 32
   training samples, median over ``--repeats``, for the torch path
   (``SNNKIT_HOST_KERNELS=0``) and the compiled CPU kernels, at each ``--threads``.
2. ``epoch``: one Yin-Yang training epoch (5000 samples, batch 32) with ``--grad eventprop``
   and ``--grad bptt`` (the raster recipe: 5-200-3, dt = 1 ms, 60 steps, LI readout), each
   in a fresh subprocess: seconds per epoch (training only), the state kept for the
   backward of one batch (EventProp: its spike records; BPTT: the tensors autograd saves)
   and the peak-RSS growth of the process over training.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _trainer(grad: str, epochs: int = 1):
    from snnkit.train import RunConfig, Trainer

    return Trainer(RunConfig(dataset="yinyang", grad=grad, epochs=epochs))


def _record_bytes(records) -> int:
    total = 0
    for record in records:
        for value in vars(record).values():
            for t in value if isinstance(value, tuple) else (value,):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
    return total


def batch_time(threads: int, repeats: int) -> dict:
    """Median seconds of one forward + backward of the Yin-Yang batch (this process's path)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    trainer = _trainer("eventprop")
    x, y = trainer.batch("train", torch.arange(32))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        out, _ = trainer.outputs(trainer.model(x))
        trainer.loss(out, y).backward()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times[1:]), "repeats": repeats}


def epoch_cost(grad: str, threads: int) -> dict:
    """One training epoch of ``grad``: seconds, saved-for-backward bytes, peak-RSS growth."""
    from snnkit.bench.engine import _SavedBytes

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    trainer = _trainer(grad)
    x, y = trainer.batch("train", torch.arange(32))
    if grad == "eventprop":
        records = trainer.model.options["record"] = []
        out, _ = trainer.outputs(trainer.model(x))
        saved = _record_bytes(records)
        del trainer.model.options["record"]
    else:
        counter = _SavedBytes()
        with counter.hooks():
            trainer.model.reset_state()
            out, _ = trainer.outputs(trainer.model(x))
        saved = counter.total
    del out
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    metrics = trainer.train_epoch(1)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "grad": grad,
        "seconds_per_epoch": metrics.seconds,
        "train_accuracy": metrics.train_accuracy,
        "saved_for_backward_kib_per_batch": saved / 1024,
        "peak_rss_growth_mib": (rss1 - rss0) / 1024,
        "peak_rss_mib": rss1 / 1024,
    }


def _child(kind: str, arg: str, threads: int, repeats: int, env: dict) -> dict:
    here = str(Path(__file__).resolve().parent)
    call = (
        f"batch_time({threads}, {repeats})"
        if kind == "batch"
        else f"epoch_cost({arg!r}, {threads})"
    )
    code = f"import json, sys; sys.path.insert(0, {here!r}); import eventprop_speed as b; print(json.dumps(b.{call}))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from snnkit.bench import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_speed.json")
    args = parser.parse_args(argv)
    batch = []
    for threads in args.threads:
        for path, env in (("torch", {"SNNKIT_HOST_KERNELS": "0"}), ("kernels", {})):
            r = _child("batch", "", threads, args.repeats, env)
            batch.append({"path": path, "threads": threads, **r})
            print(f"batch  {path:8s} threads={threads}: {1e3 * r['seconds']:8.1f} ms", flush=True)
    epoch = []
    for grad in ("eventprop", "bptt"):
        r = _child("epoch", grad, args.threads[0], 0, {})
        epoch.append({"threads": args.threads[0], **r})
        print(
            f"epoch  {grad:9s}: {r['seconds_per_epoch']:6.2f} s  saved/batch "
            f"{r['saved_for_backward_kib_per_batch']:8.1f} KiB  RSS growth "
            f"{r['peak_rss_growth_mib']:.1f} MiB",
            flush=True,
        )
    report = {
        "command": " ".join(["python", "benchmarks/eventprop_speed.py", *(argv or sys.argv[1:])]),
        "machine": machine_info("cpu"),
        "note": "shared 2-core machine: other jobs were running; compare ratios, not absolutes",
        "batch": batch,
        "epoch": epoch,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
