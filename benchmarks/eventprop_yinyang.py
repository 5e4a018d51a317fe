"""EventProp on Yin-Yang (Wunderlich & Pehle's 5-200-3): test accuracy over seeds.

    python benchmarks/eventprop_yinyang.py                       # 5 seeds x 30 epochs
    python benchmarks/eventprop_yinyang.py --seeds 0 1 --epochs 5 --threads 1
    python benchmarks/eventprop_yinyang.py --lr 1e-2 --batch-size 256 --out /tmp/x.json
    python benchmarks/eventprop_yinyang.py --data-opt t_min=0 t_max=30 bias_time=0

Each seed is ``snnkit run --grad eventprop --dataset yinyang --seed S``: the dataset's
event recipe (snnkit/builtin.py: Wunderlich & Pehle's latency code, initialisation and
first-spike loss) for every option not given, trained in this process with no results
database. Writes per-seed final test accuracy, the per-epoch history, mean and
std (sample std over seeds), seconds per epoch and the machine to
``benchmarks/results/eventprop_yinyang.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from snnkit.bench import machine_info
from snnkit.train import RunConfig, run

RESULTS = Path(__file__).resolve().parent / "results"


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"option {item!r}: use KEY=VALUE")
        out[key] = _value(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--loss")
    parser.add_argument("--readout")
    parser.add_argument("--hidden")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--clip-grad", type=float, help="clip the gradient's global norm")
    parser.add_argument("--schedule", help="none, cosine or step:GAMMA:EVERY")
    parser.add_argument("--grad", default="eventprop")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="default: the recipe's")
    parser.add_argument("--layer-opt", nargs="*", default=[], help="KEY=VALUE")
    parser.add_argument("--neuron-opt", nargs="*", default=[], help="KEY=VALUE")
    parser.add_argument("--data-opt", nargs="*", default=[], help="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_yinyang.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = []
    for seed in args.seeds:
        config = RunConfig(
            dataset="yinyang",
            grad=args.grad,
            seed=seed,
            epochs=args.epochs,
            lr=args.lr,
            loss=args.loss,
            readout=args.readout,
            hidden=args.hidden,
            batch_size=args.batch_size,
            schedule=args.schedule,
            clip_grad=args.clip_grad,
            dtype=args.dtype,
            layer_options=_pairs(args.layer_opt),
            neuron_options=_pairs(args.neuron_opt),
            dataset_options=_pairs(args.data_opt),
        )
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            result = run(config, db=None, out=out, progress=False)
        summary = result.summary()
        runs.append(
            {
                "seed": seed,
                "test_accuracy": summary["test_accuracy"],
                "test_accuracy_at_best_validation": summary["test_accuracy_at_best_validation"],
                "best_validation_epoch": summary["best_validation_epoch"],
                "train_accuracy": summary["train_accuracy"],
                "seconds_per_epoch": summary["seconds_per_epoch"],
                "wall_seconds": time.perf_counter() - start,
                "test_history": [e.test_accuracy for e in result.epochs],
                "validation_history": [e.validation_accuracy for e in result.epochs],
                "dead_history": [e.dead_fraction for e in result.epochs],
                "skipped_steps": summary["skipped_steps"],
                "config": summary["config"],
            }
        )
        print(
            f"seed {seed}: test {summary['test_accuracy']:.2%}  train "
            f"{summary['train_accuracy']:.2%}  {summary['seconds_per_epoch']:.2f} s/epoch  "
            f"skipped steps {summary['skipped_steps']}",
            flush=True,
        )
    accs = [r["test_accuracy"] for r in runs]
    selected = [r["test_accuracy_at_best_validation"] for r in runs]
    report = {
        "command": " ".join(["python", "benchmarks/eventprop_yinyang.py", *(argv or sys.argv[1:])]),
        "machine": machine_info("cpu"),
        "test_accuracy_mean": statistics.mean(accs),
        "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "test_accuracy_at_best_validation_mean": statistics.mean(selected),
        "test_accuracy_at_best_validation_std": (
            statistics.stdev(selected) if len(selected) > 1 else 0.0
        ),
        "runs": runs,
    }
    print(f"test accuracy {report['test_accuracy_mean']:.2%} ± {report['test_accuracy_std']:.2%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
