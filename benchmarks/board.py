"""The project's own leaderboard: the bundled methods and the installed peers on Yin-Yang
and Randman, then the published page ``docs/leaderboard.md`` and the HTML report.

    python benchmarks/board.py                              # 5 seeds, both tasks, all methods
    python benchmarks/board.py --seeds 1 --grad exodus --grad snntorch
    python benchmarks/board.py --report-only                # pages from the store as it is

Each (task, method, seed) is ``snnkit leaderboard run --dataset TASK --grad METHOD --seed
S`` in a subprocess, on one thread: the method's documented recipe (the dataset's recipe
and the method's own run defaults), nothing tuned here. Seeds are the outer loop, so an
interrupted board has every method at about the same number of seeds; rerunning it resumes
(recorded runs are skipped, interrupted ones continue from their checkpoint). ``--workers``
runs (default 2) train at once. The store is ``benchmarks/results/board.db`` (committed, so a board
that takes longer than one sitting resumes on any clone; only its completed runs count) and
checkpoints go to ``runs/board`` (not committed); ``--report-only`` skips training.

sinabs pins an older nir than the ``nir`` extra, so its cells run from a venv of their own
against the same store, and its conformance cases are added to the board's file::

    python -m venv .venv-sinabs && .venv-sinabs/bin/pip install -c constraints.txt -e ".[datasets,plot]" sinabs
    .venv-sinabs/bin/python benchmarks/board.py --grad sinabs --workers 1
    .venv-sinabs/bin/snnkit conformance --grad sinabs --json runs/board/conformance-sinabs.json

The grad-error column reads ``runs/board/conformance*.json`` (``snnkit conformance --json
runs/board/conformance.json`` for the rest).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("yinyang", "randman")
# the bundled methods and the peers (snnkit[peers]), fast ones first, so a board stopped
# early has the most methods; other installed methods only with --grad
ORDER = (
    "exodus",
    "bptt",
    "slayer",
    "rouser",
    "bptt-detached-reset",
    "eventprop",
    "eest",
    "snntorch",
    "sinabs",
    "spikingjelly",
    "norse",
)
# not on the board unless asked for with --grad: the event oracle, hours per run here
# (Python loops over events); its gradients are EventProp's to 1e-14 (conformance)
REFERENCES = ("exact-autograd",)


def snnkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "snnkit.cli", *args]


def methods(wanted: list[str] | None) -> list[str]:
    from snnkit.registry import get_registry

    installed = set(get_registry().names("gradient"))
    return wanted or [m for m in ORDER if m in installed]


def train(cells: list[tuple[str, str, int]], workers: int, db: Path, out: Path) -> None:
    """Train ``(task, method, seed)`` cells, each ``leaderboard run --seed S`` in its own
    process, ``workers`` at a time, in the order given; each task's log gets a cell's
    output as one block when it ends."""
    queue, lock = list(reversed(cells)), threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                task, grad, seed = queue.pop()
            cmd = snnkit(
                "leaderboard", "run", "--dataset", task, "--grad", grad, "--seed", str(seed),
                "--db", str(db), "--out", str(out), "--threads", "1", "--no-progress",
            )  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            with lock, (out / f"{task}.log").open("a") as sink:
                sink.write(f"$ {' '.join(cmd[2:])}\n{done.stdout}{done.stderr}")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--task", action="append", choices=TASKS)
    parser.add_argument(
        "--grad", action="append", help="methods (default: the bundled ones and the peers)"
    )
    parser.add_argument("--db", type=Path, default=ROOT / "benchmarks" / "results" / "board.db")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "board")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "leaderboard.md")
    parser.add_argument("--report", type=Path, default=ROOT / "runs" / "board" / "report.html")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (one thread each)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        grads = methods(args.grad)
        cells = [
            (task, grad, seed)
            for seed in range(args.seeds)
            for grad in grads
            for task in args.task or TASKS
        ]
        train(cells, args.workers, args.db, args.out)
    conformance = merged_conformance(args.out)
    extra = ["--conformance", str(conformance)] if conformance.exists() else []
    report = subprocess.run(
        snnkit("leaderboard", "report", str(args.report), "--db", str(args.db), *extra)
    )
    write_page(args, conformance)
    return report.returncode


def merged_conformance(out: Path) -> Path:
    """``out/conformance*.json`` (one per venv) as one file of all their cases."""
    import json

    files = sorted(p for p in out.glob("conformance*.json") if p.name != "conformance-all.json")
    merged = out / "conformance-all.json"
    if files:
        payloads = [json.loads(p.read_text()) for p in files]
        methods = [{r["method"] for r in p["results"]} for p in payloads]
        results = [  # a method checked in several files: the last file's cases
            r
            for k, p in enumerate(payloads)
            for r in p["results"]
            if not any(r["method"] in later for later in methods[k + 1 :])
        ]
        merged.write_text(json.dumps({**payloads[0], "results": results}))
    return merged


def refusals(log: Path) -> dict[str, str]:
    """Per method, the error line its last ``leaderboard run`` in ``log`` ended with."""
    out: dict[str, str] = {}
    grad = None
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("$ "):
            words = line.split()
            grad = words[words.index("--grad") + 1] if "--grad" in words else None
        elif line.startswith("error: ") and grad is not None:
            out[grad] = line
    return out


def write_page(args, conformance: Path) -> None:
    """docs/leaderboard.md: per task the ranked table, then what the board still lacks."""
    import datetime
    import json
    import os

    from snnkit.leaderboard import conformance_errors, entries, render
    from snnkit.registry import get_registry
    from snnkit.report import annotate
    from snnkit.results import ResultsStore

    registry = get_registry()
    with ResultsStore(args.db) as store:
        board = entries(store)
        running = [r for r in store.runs(status=None) if r.status != "completed"]
    errors = (
        conformance_errors(json.loads(conformance.read_text())) if conformance.exists() else None
    )
    annotate(
        board,
        lambda task: dict(registry.dataset(task).defaults or {}),
        lambda m: (
            m in registry.names("gradient") and registry.gradient(m).representation == "events"
        ),
        errors,
    )
    for e in board:
        e.label = e.recipe_diff  # the published page shows settings against the recipe
    grads = methods(args.grad)
    lines = [
        "# The snnkit leaderboard",
        "",
        "Every bundled method and the peer libraries (`snnkit[peers]`) on Yin-Yang and Randman,",
        "each with the recipe it documents (the dataset's recipe and the method's own run",
        "defaults, tuned on validation data only); final-epoch test accuracy. Generated by one",
        "command (`benchmarks/results/board.db` is its store), which also writes the HTML report",
        "(`runs/board/report.html`: Pareto plot of accuracy against time per epoch, learning",
        "curves; not committed):",
        "",
        "```bash",
        "make setup .venv/.datasets-installed      # the plot and peers extras",
        "python benchmarks/board.py               # --seeds 5; rerun to resume",
        ".venv/bin/snnkit conformance --json runs/board/conformance.json   # grad. error",
        "```",
        "",
        "sinabs pins an older nir than the `nir` extra: its runs come from a venv of their own,",
        "against the same store (the commands are in `benchmarks/board.py`'s docstring).",
        "",
        f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} "
        f"CPU cores shared with other work (load average {os.getloadavg()[0]:.1f}), one torch "
        f"thread per run, {args.workers} runs in parallel. *s / epoch* is the wall clock under",
        "a load that varied over the hours the board ran; *CPU s / epoch* (the process's CPU time of the",
        "training pass) hardly depends on the load: compare methods by it.",
        f"Not on the board: {', '.join(REFERENCES)}, the event methods' oracle (Python loops",
        "over events, hours per run here; its gradients equal EventProp's to 1e-14, so it",
        "would train as EventProp does).",
        "Entries of equal accuracy are ordered by name (Randman's recipe reaches 100 % with most",
        "methods).",
        "Columns: see `snnkit leaderboard report` (docs/guide.md); *setting* is the diff against",
        "the task's recipe, *grad. error* the worst relative gradient error against the",
        "method's oracle over the float64 conformance cases (`snnkit conformance --json`); why",
        "the peers' differ: [results.md](results.md#peer-libraries-against-the-bptt-oracle-2026-12-02).",
        "",
    ]
    for task in ("yinyang", "randman"):
        rows = [e for e in board if e.dataset == task]
        lines += [f"## {task}", ""]
        lines += [render(rows, "markdown") if rows else "No completed run yet.\n"]
        done = {(e.method, s) for e in rows for s in e.seeds}
        refused = refusals(args.out / f"{task}.log")
        missing = [
            f"{g} (seeds {', '.join(str(s) for s in range(args.seeds) if (g, s) not in done)})"
            + (f' — refused: "{refused[g][len("error: ") :]}"' if g in refused else "")
            for g in grads
            if any((g, s) not in done for s in range(args.seeds))
        ]
        if missing:
            lines += [
                f"Missing from the {args.seeds}-seed board (not finished by the time this page "
                f"was generated): {'; '.join(missing)}.",
                "",
            ]
    if running:
        lines += [f"{len(running)} run(s) were still training or interrupted, not ranked.", ""]
    args.page.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
