"""The SHD recipe learning on synthetic SHD-format recordings of the real density.

    python benchmarks/eventprop_shd_learning.py DIR              # eventprop and exodus, 3 epochs
    python benchmarks/eventprop_shd_learning.py DIR --methods eventprop --name reg \\
        -- --layer-opt reg_strength=1e-6 --layer-opt reg_target=14     # extra run options

A smoke check that the whole pipeline learns at the real scale, not an accuracy result.
Writes ``DIR/SHD`` (``benchmarks/synthetic_shd.py``: 1600 training and 400 test
recordings, seed 5, ~8400 spikes and 0.8 s each) unless it is there, then trains each method
with the recipe's defaults, one after the other, one thread each:

    snnkit run --dataset shd --data-dir DIR --grad METHOD --epochs E --threads 1 \\
        --db DIR/runs/NAME-METHOD.db --out DIR/runs/NAME-METHOD [extra options]

and writes every run's settings and epoch rows (accuracies, hidden rate, wall and CPU
seconds) to ``benchmarks/results/eventprop_shd_learning.json`` (or ``--out``), with the
load average before and after. An interrupted run resumes from its checkpoint when the
command is repeated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def collect(db: Path) -> dict:
    """The last run in the results store ``db``: its settings, status and epoch rows."""
    from snnkit.results import ResultsStore

    with ResultsStore(db) as store:
        runs = store.runs(status=None)
    if not runs:
        raise SystemExit(f"{db}: no run recorded")
    run = runs[-1]
    return {"status": run.status, "config": run.config, "epochs": run.epochs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="data folder (synthetic SHD written if absent)")
    parser.add_argument("--methods", nargs="+", default=["eventprop", "exodus"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--name", default="recipe", help="label of these runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "eventprop_shd_learning.json")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # passed on to snnkit run
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if extra else 0)])
    sys.path.insert(0, str(HERE))
    import synthetic_shd

    from snnkit.bench import machine_info

    if not (args.dir / "SHD" / "shd_train.h5").exists():
        synthetic_shd.write(args.dir, 1600, 400, seed=5)
    load_before = machine_info("cpu").get("load_average")
    runs = {}
    for method in args.methods:
        label = f"{args.name}-{method}"
        folder = args.dir / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        cmd = ["snnkit", "run", "--dataset", "shd", "--data-dir", str(args.dir),
               "--grad", method, "--epochs", str(args.epochs), "--threads", "1",
               "--db", str(folder / f"{label}.db"), "--out", str(folder / label),
               *extra]  # fmt: skip
        print(" ".join(cmd), flush=True)
        subprocess.run([str(Path(sys.executable).with_name("snnkit")), *cmd[1:]], check=False)
        runs[label] = {"command": " ".join(cmd), **collect(folder / f"{label}.db")}
    report = {
        "date": datetime.date.today().isoformat(),
        "data": "python benchmarks/synthetic_shd.py DIR --train 1600 --test 400 --seed 5",
        "load_average_before": load_before,
        "load_average_after": machine_info("cpu").get("load_average"),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
