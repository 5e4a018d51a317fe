"""CPU threads: how many a run uses, and how idle OpenMP threads wait.

torch's CPU kernels, MKL and the compiled CPU drivers (:mod:`snnkit.host`) share one
OpenMP runtime. By default an OpenMP thread that reaches a barrier first *spins* for
milliseconds before it sleeps, which pays off only while every thread has a core of its
own. On a shared machine (another process busy on one core) the spinning threads burn the
time slices that the thread they wait for needs, at every one of the thousands of parallel
regions of an epoch: training ran 4-15x slower. :func:`quiet_waits`, called when this
module is imported (``import snnkit`` imports it before torch loads its runtime), makes waiting threads sleep instead
(``OMP_WAIT_POLICY=PASSIVE``) unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already
set; figures in docs/performance.md (``benchmarks/contention.py``).

:func:`default_threads` counts the CPUs this process may use: its affinity mask
(``taskset``, a batch system's CPU set) and its cgroup's CPU quota (containers, systemd
slices), rather than the machine's core count that torch starts with.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cgroup_cpu_limit", "default_threads", "quiet_waits", "use_threads"]


def quiet_waits() -> None:
    """Make OpenMP threads sleep while they wait, unless the user chose a wait policy.

    Effective only before the OpenMP runtime loads (``import torch``); snnkit calls it
    when it is imported. ``OMP_WAIT_POLICY=ACTIVE`` restores spinning (a machine whose
    cores are all yours)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _quota_v2(path: Path) -> float | None:
    """CPUs granted by a cgroup v2 ``cpu.max`` (``"QUOTA PERIOD"`` or ``"max PERIOD"``)."""
    quota, _, period = path.read_text().strip().partition(" ")
    return None if quota == "max" else int(quota) / int(period or 100_000)


def _quota_v1(folder: Path) -> float | None:
    """CPUs granted by a cgroup v1 ``cpu.cfs_quota_us`` (-1: no quota) and its period."""
    quota = int((folder / "cpu.cfs_quota_us").read_text())
    period = int((folder / "cpu.cfs_period_us").read_text())
    return None if quota <= 0 or period <= 0 else quota / period


def _folders(base: Path, cgroup: str) -> list[Path]:
    """``base/<cgroup>`` and each folder above it up to ``base`` (each limit applies)."""
    parts = [p for p in cgroup.split("/") if p]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def cgroup_cpu_limit(
    root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The CPUs' worth of time this process's cgroups allow (e.g. 1.5), or None if no
    quota applies. Reads cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us``), from the
    process's own cgroup up to the root; the smallest quota wins."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, cgroup = fields
        if controllers == "":  # v2: one unified hierarchy
            reads = [(_quota_v2, folder / "cpu.max") for folder in _folders(root, cgroup)]
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own hierarchy
            bases = {root / controllers, root / "cpu"}
            reads = [(_quota_v1, f) for base in bases for f in _folders(base, cgroup)]
        else:
            continue
        for read, path in reads:
            try:
                limits.append(read(path))
            except (OSError, ValueError):
                pass  # not mounted there, or not readable: no limit known from it
    found = [x for x in limits if x is not None and x > 0]
    return min(found) if found else None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup quota (rounded
    down, at least 1: a thread more than the quota only waits for its share)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def default_threads() -> int:
    """``OMP_NUM_THREADS`` if set to a positive integer, else :func:`available_cpus`."""
    try:
        wanted = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        wanted = 0
    return wanted if wanted >= 1 else available_cpus()


def use_threads(threads: int | None = None) -> int:
    """Set torch's (and so the CPU drivers') thread count: ``threads``, or
    :func:`default_threads`; returns the count."""
    import torch

    from snnkit.errors import SnnkitError

    n = default_threads() if threads is None else threads
    most = os.cpu_count() or 1
    if not 1 <= n <= most:
        raise SnnkitError(
            f"--threads must be between 1 and {most} (the CPUs here), got {n}; or leave it "
            "out to use the CPUs this process may use"
        )
    torch.set_num_threads(n)
    return n


quiet_waits()
