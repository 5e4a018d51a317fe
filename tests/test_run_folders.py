"""Run folders: keyed by the whole resolved setting, and locked while a run writes there."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.cli import cli_invoker

from snnkit.errors import SnnkitError
from snnkit.folder_lock import folder_lock
from snnkit.train import RunConfig, default_out_dir, resolve

REPO = Path(__file__).resolve().parents[1]
TINY = ["--grad", "bptt", "--hidden", "8", "--data-opt", "size=64", "--epochs", "1"]


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    return cli_invoker(monkeypatch, tmp_path)


def test_default_folder_is_keyed_by_every_setting_that_changes_training():
    base = resolve(RunConfig(grad="bptt"))
    folder = default_out_dir(base)
    assert folder.parent == Path("runs")
    assert folder.name.startswith("yinyang-bptt-lif-") and folder.name.endswith("-seed0")
    assert default_out_dir(resolve(RunConfig(grad="bptt"))) == folder  # stable
    for change in ({"surrogate": "atan"}, {"lr": 1e-2}, {"hidden": "20"}, {"epochs": 3}):
        other = resolve(dataclasses.replace(RunConfig(grad="bptt"), **change))
        assert default_out_dir(other) != folder, change
    # where it runs and reads data from does not change what is trained
    moved = resolve(RunConfig(grad="bptt", data_dir="/data"))
    assert default_out_dir(moved) == folder
    assert default_out_dir(resolve(RunConfig(grad="bptt", seed=1))).name.endswith("-seed1")
    assert default_out_dir(base, "elsewhere").parent == Path("elsewhere")


def test_runs_with_another_surrogate_do_not_collide(invoke, tmp_path):
    for surrogate in ("exponential", "atan"):
        result = invoke("run", *TINY, "--surrogate", surrogate, "--no-progress")
        assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(
        (tmp_path / "runs" / f / "checkpoint.pt").is_file() for f in folders
    )
    # the same settings again: refused, the first run's checkpoint is kept
    result = invoke("run", *TINY, "--surrogate", "atan", "--no-progress")
    assert result.exit_code == 2 and "exists from an earlier run" in result.stderr


def test_a_folder_is_locked_within_a_process(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(
            SnnkitError, match=f"in use by another snnkit run \\(pid {os.getpid()} on "
        ):
            with folder_lock(tmp_path):
                pass
    with folder_lock(tmp_path):  # released on exit
        pass


HOLDER = """
import sys, time
from pathlib import Path
from snnkit.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_run_into_a_folder_another_process_holds_is_refused(invoke, tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = invoke("run", *TINY, "--out", folder, "--db", tmp_path / "r.db", "--no-progress")
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert f"{folder} is in use by another snnkit run (pid {holder.pid} on " in result.stderr
        assert not (folder / "checkpoint.pt").exists() and not (tmp_path / "r.db").exists()
        # a killed holder leaves no stale lock: the kernel drops it with the process
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        result = invoke("run", *TINY, "--out", folder, "--db", tmp_path / "r.db", "--no-progress")
        assert result.exit_code == 0, result.output
        assert (folder / "checkpoint.pt").is_file()
    finally:
        holder.kill()
        holder.wait(timeout=30)
