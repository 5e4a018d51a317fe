"""Where the cells of a leaderboard grid train, apart from this process: a local pool of
processes (``--jobs N``) or tasks on a Ray cluster (``--executor ray``).

A cell is one run (:class:`snnkit.train.RunConfig`) with its checkpoint folder. Cells
train without a results store and return their :class:`snnkit.train.RunResult`; the
driver alone writes the SQLite store (:func:`snnkit.leaderboard.fill`). A cell whose
folder holds a checkpoint resumes from it, so a task that Ray retries after its process
or node died continues from its last finished epoch. On a cluster ``--out`` must be
storage every node sees (NFS, a shared volume): the retry may run elsewhere.

Ray is optional (``pip install 'snnkit[ray]'``) and imported only here, when asked for.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from snnkit.errors import JobFailed, SnnkitError

__all__ = ["RAY_RETRIES", "Cell", "CellResult", "in_pool", "on_ray", "train_cell"]

RAY_RETRIES = 3  # how often Ray reruns a task whose process or node died


@dataclass(frozen=True)
class Cell:
    """One run of a grid and its checkpoint folder (absolute: workers start elsewhere)."""

    config: object  # a resolved snnkit.train.RunConfig
    folder: Path

    @classmethod
    def of(cls, config, folder: Path) -> Cell:
        data_dir = config.data_dir
        if data_dir is not None:
            config = dataclasses.replace(config, data_dir=os.path.abspath(data_dir))
        return cls(config, Path(folder).absolute())


@dataclass
class CellResult:
    """What a cell's worker returns: the run's result and whether it resumed."""

    cell: Cell
    result: object  # snnkit.train.RunResult
    resumed: bool


def train_cell(cell: Cell, threads: int | None = None) -> CellResult:
    """Train ``cell`` in this process (a pool's or Ray's worker) without a results store,
    from its checkpoint if its folder has one."""
    from snnkit.threads import use_threads
    from snnkit.train import CHECKPOINT, run

    use_threads(threads)  # None: OMP_NUM_THREADS (Ray sets it to the task's CPUs)
    resumed = (cell.folder / CHECKPOINT).exists()
    result = run(cell.config, db=None, out=cell.folder, resume=resumed, progress=False)
    return CellResult(cell, result, resumed)


def in_pool(cells: Sequence[Cell], jobs: int) -> Iterator[CellResult]:
    """Train ``cells`` in ``jobs`` fresh local processes (the CPUs shared among them);
    yields each result as it finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from snnkit.threads import available_cpus

    threads = max(1, available_cpus() // jobs)
    context = multiprocessing.get_context("spawn")  # never fork a process running torch
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(train_cell, cell, threads) for cell in cells]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool:
            raise JobFailed(
                "a training process of --jobs died (killed, or out of memory); rerun the same "
                "command: recorded cells are kept and the others resume from their checkpoints"
            ) from None
        finally:
            for future in futures:
                future.cancel()


def _ray():
    try:
        import ray
    except ImportError:
        raise SnnkitError(
            "--executor ray needs Ray, which is not installed: pip install 'snnkit[ray]'"
        ) from None
    return ray


def on_ray(
    cells: Sequence[Cell],
    *,
    address: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    retries: int = RAY_RETRIES,
) -> Iterator[CellResult]:
    """Train each cell as a Ray task (``cpus``/``gpus`` reserved per task) on the cluster
    at ``address`` (``auto``: the one this machine belongs to; None: a new local one, or
    the one this process already joined); yields each result as it finishes. A task
    whose worker dies is rerun up to ``retries`` times, from its checkpoint."""
    ray = _ray()
    joined = not ray.is_initialized()
    if joined:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a new local cluster"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JobFailed(f"cannot start or reach Ray at {where}: {first}") from None
    pending = {}
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=retries)(train_cell)
        pending = {task.remote(cell): cell for cell in cells}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cell = pending.pop(ref)
                yield _result(ray, ref, cell, retries)
    finally:
        for ref in pending:  # left unfinished by an error
            ray.cancel(ref, force=True)
        if joined:
            ray.shutdown()


def _result(ray, ref, cell: Cell, retries: int) -> CellResult:
    """A finished task's result; its error as snnkit's own (one line)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the task raised: re-raise the cause
        cause = exc.cause if exc.cause is not None else exc
        raise cause from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise JobFailed(
            f"the task training {cell.folder.name} died {retries + 1} times "
            f"({type(exc).__name__}); rerun the same command to resume it from its checkpoint"
        ) from None
