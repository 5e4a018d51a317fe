"""Leaderboards: completed runs of the results store ranked per task, mean ± std over seeds.

Runs are grouped by task, method, neuron and *setting* (every resolved training option
except the seed, the device and where data and checkpoints live), so a 1-epoch smoke test
never averages with a 30-epoch run. Within an entry every metric is aggregated over seeds
(:func:`snnkit.results.over_seeds`): a seed's runs are averaged first, so a seed trained
twice weighs once; one seed has no standard deviation. Each entry names only the options
that tell it apart from the other entries of its task. Renderers: rich table, Markdown,
CSV, HTML, JSON and a PNG plot (matplotlib, ``pip install 'snnkit[plot]'``).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnkit.errors import SnnkitError
from snnkit.results import ResultsStore, RunRecord, SeedStats, _plain, over_seeds

__all__ = [
    "Entry",
    "EXECUTORS",
    "FORMATS",
    "SeedStats",
    "check_format",
    "entries",
    "fill",
    "over_seeds",
    "render",
    "setting_key",
    "setting_of",
    "write",
]

# options that do not change what is trained
_NOT_A_SETTING = ("seed", "device", "data_dir")
# shown as their own columns, so never repeated in the setting label
_OWN_COLUMNS = ("dataset", "grad", "neuron")
FORMATS = ("markdown", "csv", "html", "json", "png")
_SUFFIXES = {".md": "markdown", ".csv": "csv", ".html": "html", ".json": "json", ".png": "png"}


def setting_of(config: dict[str, Any]) -> dict[str, Any]:
    """The options of a run's (resolved) configuration that define what was trained."""
    return {k: v for k, v in config.items() if k not in _NOT_A_SETTING}


def setting_key(config: dict[str, Any]) -> str:
    """A short stable digest of :func:`setting_of` (for grouping and checkpoint folders); the
    same for a configuration and for its record read back from the store."""
    text = json.dumps(_plain(setting_of(config)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass
class Entry:
    """One row: a (task, method, neuron, setting) and its completed runs."""

    dataset: str
    method: str
    neuron: str
    setting: str  # digest of the full setting
    runs: list[RunRecord]
    label: str = ""  # the options that set this entry apart within its task
    rank: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    recipe_diff: str = ""  # the options that differ from the task's recipe
    conformance: str = "not checked"  # the method's gradient error against its oracle

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    def stats(self, metric: str | Callable[[RunRecord], Any]) -> SeedStats:
        """``metric`` over this entry's seeds (a record field or a key of its summary)."""
        return over_seeds(self.runs, metric)

    @property
    def accuracy_mean(self) -> float | None:
        return self.stats("test_accuracy").mean

    @property
    def accuracy_std(self) -> float | None:
        """Sample standard deviation over seeds; None for a single seed."""
        return self.stats("test_accuracy").std

    @property
    def best_validation_accuracy(self) -> SeedStats:
        """Test accuracy at each seed's best validation epoch (model selection on validation)."""
        return self.stats("test_accuracy_at_best_validation")

    @property
    def seconds_per_epoch(self) -> float | None:
        """Median over every recorded epoch of every seed (a seed's repeated runs once)."""
        seconds = [
            e["seconds"]
            for r in self.distinct_runs
            for e in r.epochs
            if isinstance(e.get("seconds"), int | float)
        ]
        return statistics.median(seconds) if seconds else self.stats("seconds_per_epoch").mean

    @property
    def peak_memory_mb(self) -> float | None:
        return self.stats("peak_memory_mb").max

    @property
    def spike_rate(self) -> SeedStats:
        """Mean spike rate of the hidden layers at the last epoch (spikes per neuron-step)."""
        return self.stats(lambda r: _mean(r.summary.get("spike_rate")))

    @property
    def dead_fraction(self) -> SeedStats:
        """Fraction of hidden neurons that never fired over an epoch, at the last epoch."""
        return self.stats(lambda r: _mean(r.summary.get("dead_fraction")))

    @property
    def duplicates(self) -> int:
        """Runs beyond one per seed: averaged into their seed (each seed weighs once)."""
        return len(self.runs) - len(self.seeds)

    @property
    def distinct_runs(self) -> list[RunRecord]:
        """One run per seed (the latest), for what cannot be averaged (epoch rows)."""
        latest: dict[int, RunRecord] = {}
        for r in sorted(self.runs, key=lambda r: r.id):
            latest[r.seed] = r
        return [latest[s] for s in sorted(latest)]

    def curve(self, metric: str = "validation_accuracy") -> list[tuple[int, float, float, float]]:
        """``metric`` per epoch over seeds: (epoch, mean, min, max) for the epochs every
        seed reached."""
        per_seed = [
            {e["epoch"]: e[metric] for e in r.epochs if isinstance(e.get(metric), int | float)}
            for r in self.distinct_runs
        ]
        epochs = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
        out = []
        for epoch in epochs:
            values = [p[epoch] for p in per_seed]
            out.append((epoch, statistics.fmean(values), min(values), max(values)))
        return out

    def row(self) -> dict[str, Any]:
        """Plain values, for CSV and JSON."""
        best = self.best_validation_accuracy
        return {
            "rank": self.rank,
            "dataset": self.dataset,
            "method": self.method,
            "neuron": self.neuron,
            "setting": self.label,
            "setting_id": self.setting,
            "recipe_diff": self.recipe_diff,
            "runs": len(self.runs),
            "seeds": self.seeds,
            "duplicate_runs": self.duplicates,
            "test_accuracy_mean": self.accuracy_mean,
            "test_accuracy_std": self.accuracy_std,
            "best_validation_test_accuracy_mean": best.mean,
            "best_validation_test_accuracy_std": best.std,
            "seconds_per_epoch_median": self.seconds_per_epoch,
            "peak_memory_mb": self.peak_memory_mb,
            "gradient_error": self.conformance,
            "hidden_spike_rate": self.spike_rate.mean,
            "hidden_dead_fraction": self.dead_fraction.mean,
        }


def _mean(values: Any) -> float | None:
    """The mean of a list of numbers (per-layer metrics), or the number itself."""
    if isinstance(values, int | float) and not isinstance(values, bool):
        return float(values)
    numbers = [v for v in values or [] if isinstance(v, int | float)]
    return statistics.fmean(numbers) if numbers else None


def _label(options: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """``k=v`` for each option whose value differs in some other entry of the task."""
    keys = sorted({k for o in [options, *others] for k in o} - set(_OWN_COLUMNS))
    varying = [k for k in keys if any(o.get(k) != options.get(k) for o in others)]
    return ", ".join(f"{k}={_short(options.get(k))}" for k in varying)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def entries(
    store: ResultsStore,
    *,
    dataset: str | None = None,
    methods: Iterable[str] | None = None,
    min_seeds: int = 1,
) -> list[Entry]:
    """The leaderboard: entries sorted by task, then by mean test accuracy (best first);
    entries with fewer than ``min_seeds`` seeds are left out."""
    if min_seeds < 1:
        raise SnnkitError(f"--min-seeds must be >= 1, got {min_seeds}")
    wanted = set(methods) if methods else None
    groups: dict[tuple[str, str, str, str], Entry] = {}
    for record in store.runs(dataset=dataset, status="completed"):
        if wanted is not None and record.method not in wanted:
            continue
        key = (record.dataset, record.method, record.neuron, setting_key(record.config))
        if key not in groups:
            groups[key] = Entry(*key, runs=[], options=setting_of(record.config))
        groups[key].runs.append(record)
    board = [e for e in groups.values() if len(e.seeds) >= min_seeds]
    board.sort(
        key=lambda e: (e.dataset, e.accuracy_mean is None, -(e.accuracy_mean or 0.0), e.method)
    )
    for task in {e.dataset for e in board}:
        same = [e for e in board if e.dataset == task]
        for rank, e in enumerate(same, 1):
            e.rank = rank
            e.label = _label(e.options, [o.options for o in same if o is not e])
    return board


def _percent(mean: float | None, std: float | None) -> str:
    """``97.50 ± 0.50 %``; ``97.50 ± — %`` for one seed (no spread to show)."""
    if mean is None:
        return "—"
    return f"{100 * mean:.2f} ± {'—' if std is None else f'{100 * std:.2f}'} %"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


HEADERS = (
    "#",
    "task",
    "method",
    "neuron",
    "setting",
    "seeds",
    "test accuracy",
    "at best val.",
    "s / epoch",
    "peak MB",
    "grad. error",
    "spikes",
    "dead",
)


def _fraction(stats: SeedStats) -> str:
    return "—" if stats.mean is None else f"{stats.mean:.3f}"


def cells(entry: Entry) -> tuple[str, ...]:
    """The displayed cells of one entry, in :data:`HEADERS` order."""
    seeds = f"{len(entry.seeds)} ({','.join(map(str, entry.seeds))})"
    if entry.duplicates:
        seeds += f" +{entry.duplicates} repeat(s) averaged"
    best = entry.best_validation_accuracy
    return (
        str(entry.rank),
        entry.dataset,
        entry.method,
        entry.neuron,
        entry.label or "—",
        seeds,
        _percent(entry.accuracy_mean, entry.accuracy_std),
        _percent(best.mean, best.std),
        _number(entry.seconds_per_epoch, 2),
        _number(entry.peak_memory_mb, 0),
        entry.conformance,
        _fraction(entry.spike_rate),
        _fraction(entry.dead_fraction),
    )


def recipe_diff(options: dict[str, Any], recipe: dict[str, Any], *, events: bool = False) -> str:
    """``options`` as a compact diff against a dataset's ``recipe`` (its event-method part
    when ``events``): ``key=value`` for each recipe option the entry changed, nested
    options as ``key.sub=value``; options the recipe does not set are left out."""
    base = {k: v for k, v in recipe.items() if k != "events"}
    if events:
        base |= recipe.get("events", {})
    per_kind = base.get("neuron_options", {})
    base["neuron_options"] = per_kind.get(options.get("neuron"), {})
    changed = []
    for key in sorted(set(base) & set(options) - set(_OWN_COLUMNS)):
        ours, theirs = _plain(options[key]), _plain(base[key])
        if isinstance(ours, dict) or isinstance(theirs, dict):
            ours, theirs = ours or {}, theirs or {}
            changed += [
                f"{key}.{k}={_short(ours.get(k))}"
                for k in sorted(set(ours) | set(theirs))
                if ours.get(k) != theirs.get(k)
            ]
        elif str(ours) != str(theirs):
            changed.append(f"{key}={_short(ours)}")
    return ", ".join(changed)


def conformance_errors(payload: dict[str, Any], dtype: str = "float64") -> dict[str, str]:
    """Per method, its gradient error against its oracle from a ``snnkit conformance
    --json`` file: the worst relative error over the cases it ran in ``dtype`` and how many
    passed, e.g. ``3e-15 (14/14)``, or ``fails 3/14 (worst 2e-01)``."""
    by_method: dict[str, list[dict]] = {}
    for r in payload.get("results", []):
        if r.get("dtype") == dtype and r.get("status") in ("passed", "failed", "error"):
            by_method.setdefault(r["method"], []).append(r)
    out = {}
    for method, rows in by_method.items():
        errors = [r["max_rel_err"] for r in rows if r.get("max_rel_err") is not None]
        worst = f"{max(errors):.0e}" if errors else "—"
        passed = sum(r["status"] == "passed" for r in rows)
        if passed == len(rows):
            out[method] = f"{worst} ({passed}/{len(rows)})"
        else:
            out[method] = f"fails {len(rows) - passed}/{len(rows)} (worst {worst})"
    return out


def render(board: list[Entry], fmt: str) -> str:
    """The leaderboard as text: ``markdown``, ``csv``, ``html`` or ``json``."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(e)) + " |" for e in board]
        return "\n".join(lines) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        rows = [e.row() for e in board]
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["rank"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "seeds": " ".join(map(str, row["seeds"]))})
        return buffer.getvalue()
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(e)) + "</tr>"
            for e in board
        )
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>snnkit leaderboard'
            "</title></head><body>\n<table>\n<thead><tr>"
            f"{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n</body></html>\n"
        )
    if fmt == "json":
        return json.dumps([e.row() for e in board], indent=2) + "\n"
    raise SnnkitError(f"unknown leaderboard format {fmt!r}; use one of {', '.join(FORMATS)}")


def check_format(path: Path, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` if given (checked), else from the suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise SnnkitError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SnnkitError(
            f"cannot tell the format of {path}; use a suffix ({', '.join(_SUFFIXES)}) or --format"
        )
    return fmt


def write(board: list[Entry], path: Path, fmt: str | None = None) -> str:
    """Write the leaderboard to ``path`` (format from ``fmt`` or the suffix); returns the format."""
    from snnkit.paths import writable_file

    fmt = check_format(path, fmt)
    writable_file(path, "leaderboard export")
    if not board:
        raise SnnkitError("no completed runs to rank; train some with `snnkit leaderboard run`")
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "png":
        from snnkit.report import write_png

        write_png(board, tmp)
    else:
        tmp.write_text(render(board, fmt))
    tmp.replace(path)  # atomic: never a half-written file
    return fmt


EXECUTORS = ("local", "ray")


def fill(
    configs: Iterable,
    *,
    db: str | Path,
    out: Path,
    registry=None,
    progress: bool = True,
    console=None,
    executor: str = "local",
    jobs: int = 1,
    address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
) -> list[tuple[Any, str]]:
    """Train each :class:`snnkit.train.RunConfig` that the store does not yet hold as a
    completed run with the same setting and seed. Checkpoints go to
    ``out/<task>-<method>-<neuron>-<setting>-seed<N>`` (:func:`snnkit.train.default_out_dir`);
    an interrupted run resumes from its checkpoint. Returns
    ``(config, "recorded" | "trained" | "resumed")`` per config.

    ``executor="local"`` trains the cells one after another in this process, or with
    ``jobs`` > 1 in a pool of local processes; ``"ray"`` runs each cell as a Ray task
    (:mod:`snnkit.executors`). Pool and Ray workers return their results and this process
    alone writes them to ``db``, each as soon as its cell finishes."""
    from snnkit.registry import get_registry
    from snnkit.train import resolve

    if executor not in EXECUTORS:
        raise SnnkitError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if not 1 <= jobs <= 256:
        raise SnnkitError(f"--jobs must be between 1 and 256, got {jobs}")
    if executor == "ray" and jobs != 1:
        raise SnnkitError("--jobs sets the local pool; with --executor ray the cluster's CPUs do")
    if executor != "ray" and address is not None:
        raise SnnkitError("--address names a Ray cluster; add --executor ray")
    for flag, value in (("--cpus-per-task", cpus_per_task), ("--gpus-per-task", gpus_per_task)):
        if not (value >= 0 and value < 1e6):  # NaN fails too
            raise SnnkitError(f"{flag} must be a number >= 0, got {value}")
    registry = registry or get_registry()
    resolved = [resolve(c, registry) for c in configs]  # every mistake before any training
    status = {i: "recorded" for i, c in enumerate(resolved) if _recorded(db, c)}
    todo = [i for i in range(len(resolved)) if i not in status]
    if executor == "local" and jobs == 1:
        for i in todo:
            status[i] = _train_here(resolved[i], db, out, registry, progress, console)
    elif todo:
        status.update(
            _train_elsewhere(
                resolved,
                todo,
                db,
                out,
                registry,
                console,
                executor,
                jobs,
                address,
                cpus_per_task,
                gpus_per_task,
            )  # fmt: skip
        )
    return [(c, status[i]) for i, c in enumerate(resolved)]


def _recorded(db: str | Path, config) -> bool:
    """Whether ``db`` holds a completed run of ``config``'s setting and seed."""
    from dataclasses import asdict

    if not Path(db).exists():  # the first run creates it
        return False
    key = setting_key(asdict(config))
    with ResultsStore(db) as store:
        return any(
            r.seed == config.seed and setting_key(r.config) == key
            for r in store.runs(dataset=config.dataset, method=config.grad, neuron=config.neuron)
        )


def _train_here(config, db, out, registry, progress, console) -> str:
    """Train one cell in this process, recording it as it trains."""
    from snnkit.train import CHECKPOINT, default_out_dir, run

    folder = default_out_dir(config, out)
    resume = (folder / CHECKPOINT).exists()
    run(
        config,
        db=db,
        out=folder,
        resume=resume,
        progress=progress,
        console=console,
        registry=registry,
    )
    return "resumed" if resume else "trained"


def _train_elsewhere(
    resolved, todo, db, out, registry, console, executor, jobs, address, cpus, gpus
) -> dict[int, str]:
    """Train the cells ``todo`` in a local pool or on Ray; record each as it returns."""
    from snnkit import executors
    from snnkit.train import default_out_dir, record_completed

    cells = {i: executors.Cell.of(resolved[i], default_out_dir(resolved[i], out)) for i in todo}
    index = {cell.folder: i for i, cell in cells.items()}
    if executor == "ray":
        results = executors.on_ray(list(cells.values()), address=address, cpus=cpus, gpus=gpus)
    else:
        results = executors.in_pool(list(cells.values()), jobs)
    status = {}
    for done in results:
        with ResultsStore(db) as store:
            run_id = record_completed(store, done.result, registry)
        i = index[done.cell.folder]
        status[i] = "resumed" if done.resumed else "trained"
        if console is not None:
            c, final = done.result.config, done.result.final
            console.print(
                f"{status[i]} {c.dataset} {c.grad} {c.neuron} seed {c.seed}: test accuracy "
                f"{final.test_accuracy:.1%}, recorded as run {run_id}",
                highlight=False,
            )
    return status
