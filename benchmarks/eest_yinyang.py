"""EEST on Yin-Yang (5-200-3, spiking output): test accuracy over seeds, multi vs single spike.

    OMP_NUM_THREADS=1 python benchmarks/eest_yinyang.py                  # 5 seeds x 30 epochs
    python benchmarks/eest_yinyang.py --seeds 0 1 --epochs 5 --variants multi

Each run is ``snnkit run --grad eest --dataset yinyang --seed S`` with the method's run
defaults (tau_mem 20, tau_syn 10, first_spike_exp, lr 5e-4) and the recipe for the rest;
variant ``single`` adds ``--layer-opt single_spike=true`` (each neuron fires at most once).
Trained in this process on one thread, no results database. Writes, per variant, the
per-seed final test accuracy, the per-epoch test accuracy (convergence) and the hidden
layer's dead-neuron fraction, with mean and sample std, to
``benchmarks/results/eest_yinyang.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from snnkit.bench import machine_info
from snnkit.train import RunConfig, run

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"multi": {}, "single": {"single_spike": True}}


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def _seed_run(seed: int, epochs: int | None, options: dict) -> dict:
    config = RunConfig(
        dataset="yinyang", grad="eest", seed=seed, epochs=epochs, layer_options=dict(options)
    )
    with tempfile.TemporaryDirectory() as out:
        result = run(config, db=None, out=out, progress=False)
    s = result.summary()
    return {
        "seed": seed,
        "test_accuracy": s["test_accuracy"],
        "train_accuracy": s["train_accuracy"],
        "dead_fraction": s["dead_fraction"],
        "spike_rate": s["spike_rate"],
        "seconds_per_epoch": s["seconds_per_epoch"],
        "test_history": [e.test_accuracy for e in result.epochs],
        "dead_history": [e.dead_fraction for e in result.epochs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS / "eest_yinyang.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {
        "command": " ".join(["python", "benchmarks/eest_yinyang.py", *(argv or sys.argv[1:])]),
        "machine": machine_info("cpu"),
        "variants": {},
    }
    for variant in args.variants:
        runs = []
        for seed in args.seeds:
            runs.append(_seed_run(seed, args.epochs, VARIANTS[variant]))
            r = runs[-1]
            print(
                f"{variant} seed {seed}: test {r['test_accuracy']:.2%} dead {r['dead_fraction']} "
                f"{r['seconds_per_epoch']:.2f} s/epoch",
                flush=True,
            )
        report["variants"][variant] = {
            "layer_options": VARIANTS[variant],
            "test_accuracy": _stats([r["test_accuracy"] for r in runs]),
            "dead_fraction": _stats([r["dead_fraction"][0] for r in runs]),
            "runs": runs,
        }
        acc = report["variants"][variant]["test_accuracy"]
        print(f"{variant}: test accuracy {acc['mean']:.2%} ± {acc['std']:.2%}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
