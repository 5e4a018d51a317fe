"""Ranking: completed runs of the results store grouped into leaderboard entries.

Runs are grouped by task, method, neuron and *setting* (every resolved training option
except the seed, the device and where data and checkpoints live), so a 1-epoch smoke test
never averages with a 30-epoch run. Within an entry every metric is aggregated over seeds
(:func:`snnkit.results.over_seeds`): a seed's runs are averaged first, so a seed trained
twice weighs once; one seed has no standard deviation. Each entry names only the options
that tell it apart from the other entries of its task.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from snnkit.errors import SnnkitError
from snnkit.results import ResultsStore, RunRecord, SeedStats, _plain, over_seeds

# options that do not change what is trained
_NOT_A_SETTING = ("seed", "device", "data_dir")
# shown as their own columns, so never repeated in the setting label
_OWN_COLUMNS = ("dataset", "grad", "neuron")


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

    def _epoch_median(self, key: str) -> float | None:
        """Median of an epoch metric over every epoch of every seed (a seed's repeats once);
        None unless every epoch recorded it."""
        values = [e.get(key) for r in self.distinct_runs for e in r.epochs]
        if not values or not all(isinstance(v, int | float) for v in values):
            return None
        return statistics.median(values)

    @property
    def seconds_per_epoch(self) -> float | None:
        """Wall-clock seconds per epoch: median over every recorded epoch of every seed."""
        return self._epoch_median("seconds") or self.stats("seconds_per_epoch").mean

    @property
    def cpu_seconds_per_epoch(self) -> float | None:
        """Process CPU seconds per epoch (all threads), median as above; None when a run
        did not record them. Unlike the wall clock it hardly moves with the machine's load."""
        return self._epoch_median("cpu_seconds")

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
            "cpu_seconds_per_epoch_median": self.cpu_seconds_per_epoch,
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
