"""Default run folders: keyed by the whole resolved setting (the lock that keeps two runs
out of one folder is tested in test_concurrency.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fixtures.cli import cli_invoker

from snnkit.train import RunConfig, default_out_dir, resolve

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
