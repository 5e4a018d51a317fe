"""EXODUS vs BPTT (and optionally peer libraries): speed and saved memory.

    python benchmarks/bench_exodus.py                     # CPU, and CUDA if available
    python benchmarks/bench_exodus.py --device cpu --threads 1 --timeout 120
    python benchmarks/bench_exodus.py --peers --sizes 100x32x256 --parts neuron \\
        --out benchmarks/results/peers-cpu.json            # peers that are installed

BPTT is measured in the same run (the ratios are never taken from stored numbers). A
(method, config) whose time, extrapolated from a smaller config, would exceed
``--timeout`` seconds is skipped and the reason recorded. Results go to
``benchmarks/results/exodus-<device>.json`` with the machine they were taken on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

from snnkit.bench import (
    DEFAULT_SIZES,
    PARTS,
    PEERS,
    BenchConfig,
    machine_info,
    results_table,
    run_bench,
    to_json,
)

RESULTS = Path(__file__).resolve().parent / "results"


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        steps, batch, neurons = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: use TxBxN, e.g. 100x32x256") from None
    return steps, batch, neurons


def configs_for(sizes, parts, trainable_sizes) -> list[BenchConfig]:
    configs = [BenchConfig(t, b, n, part) for t, b, n in sizes for part in parts]
    if "neuron" in parts:
        configs += [BenchConfig(t, b, n, "neuron", trainable=True) for t, b, n in trainable_sizes]
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", action="append", help="cpu, cuda (default: cpu and cuda)")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=list(DEFAULT_SIZES))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--trainable-sizes",
        nargs="*",
        type=parse_size,
        default=[DEFAULT_SIZES[0]],
        help="sizes also run with trained tau_mem and threshold (neuron part)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per measurement")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also time the installed peer libraries (snnkit[peers]), in snnkit's LIF "
        "convention and in their own (NAME:convention=library)",
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["exodus:save=input"],
        help="EXODUS with layer options, METHOD:KEY=VALUE (default: the input-saving mode)",
    )
    parser.add_argument("--out", type=Path, help="JSON path (one device only)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (1 on a busy machine: each parallel op otherwise waits "
        "for a descheduled worker thread)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.out is not None and len(devices) != 1:
        parser.error("--out needs exactly one --device")
    # each peer configured to snnkit's LIF and, separately, as its library's users run it
    peers = [v for p in PEERS for v in (p, f"{p}:convention=library")] if args.peers else []
    methods = ["exodus", *args.variants, *peers]
    configs = configs_for(args.sizes, args.parts, args.trainable_sizes)
    console = Console(width=200)
    for device in devices:
        started = time.perf_counter()
        results = run_bench(
            methods,
            configs,
            device=device,
            dtype=getattr(torch, args.dtype),
            repeats=args.repeats,
            warmup=args.warmup,
            timeout_s=args.timeout,
            progress=lambda line: console.log(line),
        )
        elapsed = time.perf_counter() - started
        console.print(results_table(results, title=f"EXODUS vs BPTT on {device}"))
        meta = machine_info(device) | {
            "script": "benchmarks/bench_exodus.py",
            "argv": sys.argv[1:] if argv is None else argv,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "timeout_s": args.timeout,
            "elapsed_s": round(elapsed, 1),
        }
        out = args.out or RESULTS / f"exodus-{torch.device(device).type}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(results, meta), indent=2) + "\n")
        console.print(f"wrote {out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
