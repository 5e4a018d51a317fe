"""``snnkit run --nproc N``: start N training processes on this machine, as torchrun does.

The workers are ``python -m snnkit run ...`` with torchrun's environment, started by
torch's own elastic launcher (a c10d rendezvous on a free local port, no restarts). Each
worker gets ``OMP_NUM_THREADS`` = ``--threads`` or the CPUs this process may use divided
among the workers, so N processes never oversubscribe the cores. When a worker fails the
launcher stops the others and reports the first failure.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid

from snnkit.errors import JobFailed

__all__ = ["LAUNCHED", "WorkersFailed", "launch", "strip_option", "worker_threads"]

# set for the workers: a rank stopped by another's failure stays quiet, the launcher reports
LAUNCHED = "SNNKIT_LAUNCHED_WORKER"


class WorkersFailed(JobFailed):
    """A worker ended with an error; ``exit_code`` is its exit code (128+N for signal N).
    ``reported``: whether that worker printed its own one-line reason already."""

    def __init__(self, message: str, exit_code: int, reported: bool) -> None:
        super().__init__(message)
        self.exit_code, self.reported = exit_code, reported


def worker_threads(nproc: int, threads: int | None) -> int:
    """CPU threads per worker: ``threads`` if given, else the available CPUs shared out."""
    from snnkit.threads import available_cpus

    return threads if threads is not None else max(1, available_cpus() // nproc)


def strip_option(args: list[str], name: str) -> list[str]:
    """``args`` without ``--name VALUE`` / ``--name=VALUE`` (the launcher's own option)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def launch(nproc: int, args: list[str], threads: int | None = None) -> None:
    """Run ``python -m snnkit ARGS`` in ``nproc`` processes of one DDP job; returns when
    all succeeded, else raises :class:`WorkersFailed` for the first that failed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ["OMP_NUM_THREADS"] = str(worker_threads(nproc, threads))
    os.environ[LAUNCHED] = "1"
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"snnkit-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
    )
    quiet = logging.getLogger("torch.distributed")
    level, quiet.level = quiet.level, logging.CRITICAL  # its failure report is ours to give
    try:
        elastic_launch(config, sys.executable)("-m", "snnkit", *args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        if code < 0:
            name = signal.Signals(-code).name
            raise WorkersFailed(
                f"rank {rank} of {nproc} was killed by {name}; the others were stopped",
                128 - code,
                reported=False,
            ) from None
        reported = code in (1, 2) or code > 128  # snnkit's one-line exits
        raise WorkersFailed(
            f"rank {rank} of {nproc} exited with code {code}; the others were stopped",
            code,
            reported,
        ) from None
    finally:
        quiet.setLevel(level)
