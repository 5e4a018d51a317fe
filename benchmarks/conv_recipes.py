"""Seconds per training epoch and peak memory of the N-MNIST and DVS Gesture recipes.

    python benchmarks/conv_recipes.py                       # writes results/conv_recipes.json
    python benchmarks/conv_recipes.py --dataset dvsgesture --grad exodus --batches 2

The real datasets cannot be downloaded here, so the script writes synthetic recordings of
the real datasets' size in their on-disk formats (the files tonic reads; writers in
``tests/fixtures/neuromorphic_files.py``) and trains on them through ``snnkit``'s own
loader and trainer with the dataset's default recipe (``NEUROMORPHIC_RECIPES``: the
architecture, bins, batch size; only ``--grad`` changes):

- N-MNIST: 34x34 pixels x 2 polarities, recordings of 300 ms (three 100 ms saccades),
  ``--nmnist-events`` events each (default 5000), uniform over pixels, polarities, time;
- DVS Gesture: 128x128 x 2, recordings of 1.6 s (the recipe reads the first 1.5 s) at
  ``--dvs-rate`` events per second (default 75 000).

Sizes of the full training sets (what one epoch is extrapolated to): 60 000 N-MNIST and
1 077 DVS Gesture recordings, less the recipe's 10 % validation split. An epoch here
is ``--batches`` + 1 whole batches (and a remainder, not timed); the first is a warm-up,
the others' median wall time is multiplied by the full epoch's number of batches: **extrapolated**, not a
full epoch. Each (dataset, method) trains in its own process, which reports its peak
resident memory (``ru_maxrss``) and the resident memory before the first batch (data and
model loaded), so the difference is what training takes. The dense raster convolutions
cost the same for any event count; ``--sensitivity`` repeats EXODUS with four times the
events to show it. Not a test: figures depend on the machine and its load (recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "tests"))

FULL_TRAIN = {"nmnist": 60_000, "dvsgesture": 1_077}
VALIDATION = 0.1  # the recipes' validation fraction (carved from the training set)


def write_nmnist(root: Path, n_train: int, n_test: int, events: int, seed: int) -> None:
    from fixtures.neuromorphic_files import Camera
    from fixtures.neuromorphic_files import write_nmnist as write

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n):
            t = np.sort(rng.integers(0, 300_000, events))  # us
            ev = Camera(rng.integers(0, 34, events), rng.integers(0, 34, events),
                        rng.integers(0, 2, events), t)  # fmt: skip
            write(root, split, k % 10, k, ev)


def write_dvsgesture(root: Path, n_train: int, n_test: int, rate: float, seed: int) -> None:
    from fixtures.neuromorphic_files import Camera
    from fixtures.neuromorphic_files import write_dvsgesture as write

    rng = np.random.default_rng(seed)
    events = int(rate * 1.6)
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n):
            user, label = 1 + k // 11, k % 11  # one file per gesture and user
            t = np.sort(rng.integers(0, 1600, events))  # ms
            ev = Camera(rng.integers(0, 128, events), rng.integers(0, 128, events),
                        rng.integers(0, 2, events), t)  # fmt: skip
            write(root, split, user if split == "train" else 24 + user, "fluorescent", label, ev)


def measure(dataset: str, grad: str, data_dir: Path, batches: int) -> dict:
    """Train ``batches`` + 1 batches of the recipe in this process; times and memory."""
    import torch

    from snnkit.train import RunConfig, Trainer

    torch.manual_seed(0)
    trainer = Trainer(RunConfig(dataset=dataset, grad=grad, epochs=1, data_dir=str(data_dir)))
    config = trainer.config
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stamps = [(time.perf_counter(), time.process_time())]
    trainer.train_epoch(
        1, on_batch=lambda k, n: stamps.append((time.perf_counter(), time.process_time()))
    )
    n = len(trainer.data["train"])
    full = [k for k in range(n // config.batch_size)][1:]  # whole batches; the first warms up
    wall, cpu = (np.diff([s[i] for s in stamps]) for i in (0, 1))
    per_batch, cpu_per_batch = [wall[k] for k in full], [cpu[k] for k in full]
    n_train = round(FULL_TRAIN[dataset] * (1 - VALIDATION))
    full_batches = -(-n_train // config.batch_size)
    median = statistics.median(per_batch)
    x, _ = trainer.batch("train", torch.arange(config.batch_size))
    return {
        "dataset": dataset,
        "grad": grad,
        "arch": config.arch,
        "input": list(x.shape),
        "batch_size": config.batch_size,
        "timed_batches": len(per_batch),
        "seconds_per_batch": per_batch,
        "median_seconds_per_batch": median,
        "cpu_seconds_per_batch": cpu_per_batch,  # user + system time of the process
        "full_epoch_batches": full_batches,
        "seconds_per_epoch_extrapolated": median * full_batches,
        "rss_before_training_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def _child(args) -> None:
    result = measure(args.dataset[0], args.grad[0], Path(args.data_dir), args.batches)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=sorted(FULL_TRAIN))
    parser.add_argument("--grad", action="append")
    parser.add_argument("--batches", type=int, default=1, help="timed batches (after 1 warm-up)")
    parser.add_argument("--nmnist-events", type=int, default=5000)
    parser.add_argument("--dvs-rate", type=float, default=75_000.0)
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "conv_recipes.json")
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.data_dir:
        return _child(args)
    datasets = args.dataset or ["nmnist", "dvsgesture"]
    grads = args.grad or ["exodus", "bptt", "slayer"]
    from snnkit.data.neuromorphic import NEUROMORPHIC_RECIPES

    rows = []
    variants = [(1.0, "")] + ([(4.0, " x4 events")] if args.sensitivity else [])
    with tempfile.TemporaryDirectory(prefix="snnkit-conv-") as tmp:
        for scale, label in variants:
            for dataset in datasets:
                batch = NEUROMORPHIC_RECIPES[dataset]["batch_size"]
                n_train = int((args.batches + 1) * batch / (1 - VALIDATION)) + 2
                root = Path(tmp) / f"{dataset}{scale:g}"
                if dataset == "nmnist":
                    write_nmnist(root, int(n_train), 10, int(args.nmnist_events * scale), 0)
                else:
                    write_dvsgesture(root, int(n_train), 11, args.dvs_rate * scale, 0)
                for grad in grads if scale == 1.0 else ["exodus"]:
                    load = os.getloadavg()
                    cmd = [sys.executable, __file__, "--data-dir", str(root), "--dataset",
                           dataset, "--grad", grad, "--batches", str(args.batches)]  # fmt: skip
                    done = subprocess.run(cmd, capture_output=True, text=True)
                    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
                    if done.returncode or not line:
                        tail = (done.stderr.strip().splitlines() or [""])[-1]
                        if done.returncode < 0:  # e.g. -9: the kernel's OOM killer
                            tail = f"killed by signal {-done.returncode} {tail}".strip()
                        row = {"dataset": dataset, "grad": grad, "error": tail}
                    else:
                        row = json.loads(line[0][len("RESULT ") :])
                    row.update(
                        events=label.strip() or "default",
                        loadavg_before=list(load),
                        loadavg_after=list(os.getloadavg()),
                    )
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(["python", "benchmarks/conv_recipes.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "nmnist_events": args.nmnist_events,
        "dvs_rate": args.dvs_rate,
        "note": "seconds_per_epoch_extrapolated = median timed batch x full epoch batches",
    }
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
