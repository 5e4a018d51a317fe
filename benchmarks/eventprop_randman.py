"""Which EventProp losses learn Randman: one short run per loss.

    python benchmarks/eventprop_randman.py                   # writes results/eventprop_randman.json
    python benchmarks/eventprop_randman.py --epochs 20 --seeds 0 1 --lr 1e-3

Each run is ``snnkit run --grad eventprop --dataset randman --loss L`` (50-100-10, one
input spike per unit in 50 ms, 1000 training samples) with an LI readout for the
readout losses (sum, sum_exp, max, avg_xentropy) and a spiking readout for the
spike-time losses (first_spike, first_spike_exp, ttfs_ce). Final test accuracy per seed.
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
LOSSES = {
    "sum": "li",
    "sum_exp": "li",
    "max": "li",
    "avg_xentropy": "li",
    "first_spike": "spiking",
    "first_spike_exp": "spiking",
    "ttfs_ce": "spiking",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_randman.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for loss in args.losses:
        accs, histories, seconds = [], [], []
        for seed in args.seeds:
            config = RunConfig(
                dataset="randman",
                grad="eventprop",
                loss=loss,
                readout=LOSSES[loss],
                epochs=args.epochs,
                lr=args.lr,
                seed=seed,
            )
            with tempfile.TemporaryDirectory() as out:
                result = run(config, db=None, out=out, progress=False)
            accs.append(result.final.test_accuracy)
            histories.append([e.test_accuracy for e in result.epochs])
            seconds.append(result.summary()["seconds_per_epoch"])
        row = {
            "loss": loss,
            "readout": LOSSES[loss],
            "test_accuracy": accs,
            "mean": statistics.mean(accs),
            "best_epoch_accuracy": max(max(h) for h in histories),
            "seconds_per_epoch": statistics.mean(seconds),
            "history": histories,
        }
        rows.append(row)
        print(f"{loss:16s} {LOSSES[loss]:8s} test {row['mean']:.1%}  {accs}", flush=True)
    report = {
        "command": " ".join(["python", "benchmarks/eventprop_randman.py", *(argv or sys.argv[1:])]),
        "machine": machine_info("cpu"),
        "chance": 0.1,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
