"""Real `snnkit run` processes stopped by real signals in the middle of an epoch, then
resumed: the record says what happened, and the resumed run ends exactly where an
uninterrupted one does. SIGHUP takes SIGTERM's path; the handlers themselves are checked
in this process at the end."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.processes import cli_command, cli_env, run_cli

from snnkit.interrupts import Interrupted, deferred, stop_on_signals
from snnkit.results import ResultsStore

# 32 batches an epoch of a few ms each: a signal sent right after an epoch was recorded
# lands in the next one; --threads 1 keeps the arithmetic identical between processes
RUN = ["run", "--grad", "bptt", "--hidden", "8", "--data-opt", "size=256", "--batch-size", "8",
       "--schedule", "none", "--epochs", "3", "--seed", "5", "--threads", "1", "--no-progress"]  # fmt: skip
KEYS = ("epoch", "train_loss", "train_accuracy", "validation_loss", "validation_accuracy",
        "test_accuracy", "spike_rate", "dead_fraction", "lr")  # fmt: skip


def history(path: Path) -> list[dict]:
    return [{k: e[k] for k in KEYS} for e in json.loads(path.read_text())["history"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("whole")
    done = run_cli(*RUN, "--db", "r.db", "--out", "ck", "--json", "whole.json", cwd=folder)
    assert done.returncode == 0, done.stderr
    return history(folder / "whole.json")


def start(folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(*RUN, "--db", "r.db", "--out", "ck"),
        cwd=folder,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def the_run(folder: Path):
    with ResultsStore(folder / "r.db") as store:
        (record,) = store.runs(status=None)
    return record


def after_first_epoch(proc: subprocess.Popen, folder: Path) -> None:
    """Wait until the run has recorded its first epoch (it is then in its second)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (folder / "r.db").exists():
            with ResultsStore(folder / "r.db") as store:
                runs = store.runs(status=None)
            if runs and runs[0].epochs:
                return
        time.sleep(0.02)
    raise AssertionError("the run recorded no epoch within 120 s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=str)
def test_a_signal_mid_epoch_checkpoints_records_and_resumes_exactly(tmp_path, uninterrupted, sig):
    proc = start(tmp_path)
    after_first_epoch(proc, tmp_path)
    assert the_run(tmp_path).state == "running"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    record = the_run(tmp_path)
    done = len(record.epochs)
    assert record.status == "interrupted" and 1 <= done < 3
    (line,) = err.strip().splitlines()
    assert line == (
        f"interrupted by {signal.Signals(sig).name}: {done} finished epoch{'s' * (done > 1)} "
        f"checkpointed in ck/checkpoint.pt, run {record.id} recorded as interrupted in r.db; "
        f"continue with: snnkit run --resume --run-id {record.id} --db r.db"
    )
    resumed = run_cli(
        "run", "--resume", "--run-id", record.id, "--db", "r.db", "--json", "r.json",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert history(tmp_path / "r.json") == uninterrupted
    final = the_run(tmp_path)
    assert final.id == record.id and final.status == "completed" and len(final.epochs) == 3


def test_a_killed_run_is_stale_and_resume_alone_continues_it(tmp_path, uninterrupted):
    proc = start(tmp_path)
    after_first_epoch(proc, tmp_path)
    proc.send_signal(signal.SIGKILL)  # no handler runs: the record stays "running"
    proc.communicate(timeout=60)
    record = the_run(tmp_path)
    assert record.status == "running" and record.state == "stale"
    shown = run_cli("leaderboard", "show", "--db", "r.db", cwd=tmp_path)
    assert shown.returncode == 2 and "no completed runs" in shown.stderr  # not "running"
    resumed = run_cli(
        "run", "--resume", "--db", "r.db", "--json", "r.json", "--no-progress", cwd=tmp_path
    )  # the most recent interrupted or stale run, with its own settings
    assert resumed.returncode == 0, resumed.stderr
    assert history(tmp_path / "r.json") == uninterrupted
    final = the_run(tmp_path)
    assert final.id == record.id and final.status == "completed"
    again = run_cli("run", "--resume", "--db", "r.db", cwd=tmp_path)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("error: nothing to resume in r.db")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_stop_signals_raise_interrupted_and_the_old_handlers_come_back(sig):
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as caught, stop_on_signals():
        signal.raise_signal(sig)
    assert caught.value.signum == sig and caught.value.exit_code == 128 + sig
    assert signal.getsignal(sig) is before


def test_a_signal_inside_deferred_waits_for_the_block_to_end():
    steps = []
    with pytest.raises(Interrupted), stop_on_signals():
        with deferred():
            signal.raise_signal(signal.SIGTERM)
            steps.append("after the signal")  # still runs: the block finishes first
        steps.append("after the block")  # never: the signal is raised as the block ends
    assert steps == ["after the signal"]
    with stop_on_signals(), deferred():  # nothing left pending from before
        pass
