"""The peer libraries' LIF neurons against snnkit's BPTT oracle: which match, how closely.

    python benchmarks/peer_conformance.py            # every installed peer, float64 and float32

Runs snnkit's raster conformance cases (``snnkit conformance --grad NAME``'s, with the
default surrogate, exponential) on each peer method of the bundled ``peers`` plugin, and
for norse, which cannot express that surrogate, once more with the surrogates it can
express (``FastSigmoid(slope=1)`` = its SuperSpike, ``Triangle(width=1)``). Prints one
Markdown row per (peer, surrogate, dtype) and writes every case to
``benchmarks/results/peer_conformance.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from snnkit.bench import machine_info
from snnkit.conformance.raster import RASTER_CASES, run_raster_case
from snnkit.registry import get_registry
from snnkit.surrogates import FastSigmoid, Triangle

RESULTS = Path(__file__).resolve().parent / "results"
PEERS = ("snntorch", "norse", "spikingjelly", "sinabs")
EXTRA_SURROGATES = {"norse": (FastSigmoid(slope=1.0), Triangle(width=1.0))}


def check(name: str, dtype: str, surrogate) -> list[dict]:
    method = get_registry().gradient(name)
    return [
        run_raster_case(method, case, dtype, surrogate=surrogate).to_json() for case in RASTER_CASES
    ]


def summary(rows: list[dict]) -> str:
    counts = Counter(r["status"] for r in rows)
    errors = [r["max_rel_err"] for r in rows if r.get("max_rel_err") is not None]
    worst = f"{max(errors):.1e}" if errors else "—"
    failed = "; ".join(
        f"{r['case']}: {r['detail']}"
        for r in rows
        if r["status"] != "passed" and r["status"] != "skipped"
    )
    return f"{counts['passed']} | {counts['failed'] + counts['error']} | {counts['skipped']} | {worst} | {failed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grad", action="append", choices=PEERS)
    parser.add_argument("--dtype", action="append", choices=("float64", "float32"))
    parser.add_argument("--out", type=Path, default=RESULTS / "peer_conformance.json")
    args = parser.parse_args()
    installed = set(get_registry().names("gradient"))
    out = {"meta": machine_info(), "runs": []}
    print("| peer | surrogate | dtype | passed | failed | skipped | worst rel. error | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.grad or PEERS:
        if name not in installed:
            print(f"| {name} | — | — | not installed | | | | |")
            continue
        for surrogate in (None, *EXTRA_SURROGATES.get(name, ())):
            label = "default (exponential)" if surrogate is None else surrogate.describe()
            for dtype in args.dtype or ("float64", "float32"):
                rows = check(name, dtype, surrogate)
                out["runs"].append(
                    {"grad": name, "surrogate": label, "dtype": dtype, "cases": rows}
                )
                print(f"| {name} | {label} | {dtype} | {summary(rows)} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
