"""The BPTT oracle's speed in two source trees, interleaved in one run.

For each round, and each tree in turn, a fresh process runs ``snnkit bench --grad bptt``
(the same sizes and parts) with that tree first on ``PYTHONPATH``; the table gives each
tree's median total time (forward + backward) over the rounds and the ratio to the first
tree. Alternating the trees round by round spreads the load of a shared machine over both.
Plugins are not loaded (``SNNKIT_PLUGINS=none``): only the built-in BPTT is timed.
``--env KEY=VALUE`` sets the same environment for every tree (e.g. an OpenMP wait policy
that one tree sets itself and the other does not, to compare the code alone).

The interpreter must not import snnkit from an editable install (whose import hook would
win over ``PYTHONPATH``): use a venv that sees torch but not snnkit, e.g.::

    python3 -m venv /tmp/bvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/bvenv/lib/python3.11/site-packages/torch.pth
    git archive a85d795^ | tar -x -C /tmp/before;  git archive HEAD | tar -x -C /tmp/after
    cd /tmp && /tmp/bvenv/bin/python $OLDPWD/benchmarks/bptt_before_after.py \\
        --tree before=/tmp/before --tree after=/tmp/after --rounds 3 --out bptt.json
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


def bench_once(tree: Path, args: argparse.Namespace) -> list[dict]:
    """One ``snnkit bench --grad bptt`` in a fresh process importing ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), SNNKIT_PLUGINS="none")
    env.update(kv.split("=", 1) for kv in args.env)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "snnkit.cli", "bench", "--grad", "bptt", "--json", str(out)]
        cmd += ["--repeats", str(args.repeats), "--dtype", args.dtype, "--timeout", "100000"]
        for size in args.size:
            cmd += ["--size", size]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise SystemExit(f"bench in {tree} failed:\n{done.stderr}")
        return json.loads(out.read_text())["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--size", action="append", default=[], help="T,B,N (default: bench's)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for every tree (repeatable)"
    )
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    totals: dict[tuple, dict[str, list[float]]] = {}
    loads = []
    for r in range(args.rounds):
        for name, path in trees.items():
            loads.append(os.getloadavg())
            start = time.time()
            for row in bench_once(Path(path), args):
                key = (row["steps"], row["batch"], row["neurons"], row["part"])
                totals.setdefault(key, {}).setdefault(name, []).append(row["total_ms"])
            print(f"round {r + 1} {name}: {time.time() - start:.0f} s, load {loads[-1][0]:.1f}")
    first = next(iter(trees))
    rows = []
    for key, by_tree in totals.items():
        medians = {n: statistics.median(v) for n, v in by_tree.items()}
        rows.append({
            "steps": key[0], "batch": key[1], "neurons": key[2], "part": key[3],
            "total_ms": by_tree, "median_ms": medians,
            "ratio_vs_" + first: {n: m / medians[first] for n, m in medians.items()},
        })  # fmt: skip
    load1 = [x[0] for x in loads]
    meta = {"trees": trees, "rounds": args.rounds, "repeats": args.repeats, "dtype": args.dtype,
            "env": args.env,
            "load1_min": min(load1), "load1_max": max(load1), "loads": loads}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    names = list(trees)
    print("| T, B, N | part | " + " | ".join(f"{n} ms" for n in names) + f" | ratio to {first} |")
    for row in rows:
        cells = [f"{row['median_ms'][n]:.1f}" for n in names]
        ratios = ", ".join(f"{row['ratio_vs_' + first][n]:.3f}" for n in names[1:])
        size = f"{row['steps']}, {row['batch']}, {row['neurons']}"
        print(f"| {size} | {row['part']} | " + " | ".join(cells) + f" | {ratios} |")
    print(f"load average (1 min) {min(load1):.1f}-{max(load1):.1f}")


if __name__ == "__main__":
    main()
