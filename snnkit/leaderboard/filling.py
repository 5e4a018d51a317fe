"""Filling: training the runs a leaderboard lacks, here, in a local process pool or on Ray."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from snnkit.errors import SnnkitError
from snnkit.leaderboard.ranking import setting_key
from snnkit.results import ResultsStore

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
    from snnkit.runconfig import resolve_run

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
    # resolved once, every mistake found before any training
    resolved = [resolve_run(c, registry) for c in configs]
    status = {i: "recorded" for i, r in enumerate(resolved) if _recorded(db, r.config)}
    todo = [i for i in range(len(resolved)) if i not in status]
    if executor == "local" and jobs == 1:
        for i in todo:
            status[i] = _train_here(resolved[i], db, out, progress, console)
    elif todo:
        status.update(
            _train_elsewhere(
                [r.config for r in resolved],
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
    return [(r.config, status[i]) for i, r in enumerate(resolved)]


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


def _train_here(resolved, db, out, progress, console) -> str:
    """Train one cell (a :class:`snnkit.runconfig.ResolvedRun`) in this process, recording
    it as it trains."""
    from snnkit.train import CHECKPOINT, default_out_dir, run

    folder = default_out_dir(resolved.config, out)
    resume = (folder / CHECKPOINT).exists()
    run(resolved, db=db, out=folder, resume=resume, progress=progress, console=console)
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
