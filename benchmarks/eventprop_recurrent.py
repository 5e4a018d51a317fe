"""One Yin-Yang training epoch of EventProp, recurrent against feed-forward hidden layers.

    python benchmarks/eventprop_recurrent.py                  # 1 epoch each, 1 thread
    python benchmarks/eventprop_recurrent.py --epochs 2 --threads 2

Each run is ``snnkit run --grad eventprop --dataset yinyang --epochs N [--recurrent]``
(the dataset's event recipe for everything else), trained in this process with no results
database, one after the other in the same process. Writes seconds per epoch, the ratio
recurrent / feed-forward, the test accuracy and the machine (load average included) to
``benchmarks/results/eventprop_recurrent.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from snnkit.bench import machine_info
from snnkit.train import RunConfig, run

RESULTS = Path(__file__).resolve().parent / "results"


def _epoch(recurrent: bool, epochs: int) -> dict:
    config = RunConfig(dataset="yinyang", grad="eventprop", recurrent=recurrent, epochs=epochs)
    with tempfile.TemporaryDirectory() as out:
        result = run(config, db=None, out=out, progress=False)
    summary = result.summary()
    return {
        "recurrent": recurrent,
        "seconds_per_epoch": summary["seconds_per_epoch"],
        "test_accuracy": summary["test_accuracy"],
        "spike_rate": [e.spike_rate for e in result.epochs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_recurrent.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    before = machine_info("cpu")
    runs = [_epoch(False, args.epochs), _epoch(True, args.epochs)]
    ff, rec = (r["seconds_per_epoch"] for r in runs)
    report = {
        "command": " ".join(
            ["python", "benchmarks/eventprop_recurrent.py", *(argv or sys.argv[1:])]
        ),
        "machine": before,
        "load_average_after": machine_info("cpu").get("load_average"),
        "runs": runs,
        "recurrent_over_feedforward": rec / ff,
    }
    for r in runs:
        kind = "recurrent   " if r["recurrent"] else "feed-forward"
        print(f"{kind}: {r['seconds_per_epoch']:.2f} s/epoch, test {r['test_accuracy']:.2%}")
    print(f"recurrent / feed-forward: {rec / ff:.2f}x (load {before.get('load_average')})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
