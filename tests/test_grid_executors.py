"""Leaderboard grids off this process: a local pool (`--jobs`) and a real local Ray cluster.

The driver alone writes the store: one completed row per (method, seed) cell, a rerun
trains nothing, a Ray task whose process is killed mid-run is retried, resumes from its
checkpoint, and leaves no `running` record. Ray tests need the ``ray`` extra (skipped
without it, a failure under SNNKIT_REQUIRE_RAY=1).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fixtures.cli import cli_invoker
from fixtures.processes import cli_env

from snnkit.leaderboard import fill
from snnkit.results import ResultsStore
from snnkit.train import RunConfig

TINY = dict(
    dataset="yinyang",
    dataset_options={"size": 48},
    hidden="8",
    batch_size=16,
    schedule="none",
    epochs=2,
)
GRID_ARGS = (
    "leaderboard", "run", "--grad", "bptt", "--grad", "exodus", "--seeds", "2", "--epochs", "2",
    "--no-progress",
)  # fmt: skip


def _grid(**extra) -> list[RunConfig]:
    options = {**TINY, **extra}
    return [RunConfig(grad=g, seed=s, **options) for g in ("bptt", "exodus") for s in (0, 1)]


def _cells(db: Path) -> Counter:
    with ResultsStore(db) as store:
        everything = store.runs(status=None)
    assert all(r.status == "completed" for r in everything), [r.status for r in everything]
    return Counter((r.method, r.seed) for r in everything)


ONE_EACH = Counter({("bptt", 0): 1, ("bptt", 1): 1, ("exodus", 0): 1, ("exodus", 1): 1})


def test_a_local_pool_records_one_row_per_cell(tmp_path):
    db = tmp_path / "r.db"
    done = fill(_grid(), db=db, out=tmp_path / "runs", progress=False, jobs=2)
    assert [status for _, status in done] == ["trained"] * 4
    assert _cells(db) == ONE_EACH
    again = fill(_grid(), db=db, out=tmp_path / "runs", progress=False, jobs=2)
    assert [status for _, status in again] == ["recorded"] * 4
    assert _cells(db) == ONE_EACH


def test_executor_options_are_checked_before_any_run(tmp_path, monkeypatch):
    cli = cli_invoker(monkeypatch, tmp_path)
    for args, message in (
        (("--executor", "slurm"), "--executor must be one of local, ray"),
        (("--jobs", "0"), "--jobs must be between 1 and 256"),
        (("--address", "auto"), "--address names a Ray cluster; add --executor ray"),
        (("--executor", "ray", "--jobs", "2"), "--jobs sets the local pool"),
    ):
        result = cli(*GRID_ARGS, *args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "snnkit-results.db").exists()


def test_without_ray_the_ray_executor_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    result = cli_invoker(monkeypatch, tmp_path)(*GRID_ARGS, "--executor", "ray")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --executor ray needs Ray, which is not installed: pip install 'snnkit[ray]'"
    )


# -- a real local Ray cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module; yields its address."""
    if os.environ.get("SNNKIT_REQUIRE_RAY") == "1":
        import ray
    else:
        ray = pytest.importorskip("ray")
    for attempt in (1, 2):  # Ray gives its raylet 30 s to start: a loaded machine may need two
        try:
            ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_ray_grid_from_the_command_line_records_one_row_per_cell(ray_cluster, tmp_path):
    """`snnkit leaderboard run --executor ray --address HOST:PORT` (a driver process of
    its own); a rerun trains nothing."""
    args = [
        *GRID_ARGS,
        "--data-opt",
        "size=48",
        "--data-dir",
        ".",
    ]  # a relative path: the workers start elsewhere
    command = [sys.executable, "-m", "snnkit", *args, "--executor", "ray"]
    command += ["--address", ray_cluster, "--db", "r.db", "--out", "runs"]
    first = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "4 trained, 0 resumed, 0 already recorded" in first.stdout
    assert _cells(tmp_path / "r.db") == ONE_EACH
    same = [
        RunConfig(grad=g, seed=s, epochs=2, dataset_options={"size": 48})
        for g in ("bptt", "exodus")
        for s in (0, 1)
    ]
    again = fill(same, db=tmp_path / "r.db", out=tmp_path / "runs", executor="ray")
    assert [status for _, status in again] == ["recorded"] * 4
    assert _cells(tmp_path / "r.db") == ONE_EACH


def _kill_first_run(out: Path, killed: dict, seconds: float = 240) -> None:
    """Once a cell has checkpointed an epoch, SIGKILL the process training it (its pid is
    in the folder's lock file)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for checkpoint in out.glob("*/checkpoint.pt"):
            owner = (checkpoint.parent / ".lock").read_text().split()
            if owner and owner[0] == "pid":
                os.kill(int(owner[1]), signal.SIGKILL)
                killed["folder"] = checkpoint.parent.name
                return
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_ray_task_is_retried_and_resumes_from_its_checkpoint(ray_cluster, tmp_path):
    db, out = tmp_path / "r.db", tmp_path / "runs"
    killed: dict = {}
    watcher = threading.Thread(target=_kill_first_run, args=(out, killed), daemon=True)
    watcher.start()
    done = fill(_grid(epochs=15), db=db, out=out, progress=False, executor="ray")
    watcher.join()
    assert killed, "no run was killed"
    statuses = Counter(status for _, status in done)
    assert statuses["resumed"] >= 1 and statuses["resumed"] + statuses["trained"] == 4
    assert _cells(db) == ONE_EACH  # one row per cell, nothing left running
    with ResultsStore(db) as store:
        assert all(len(r.epochs) == 15 for r in store.runs())
