"""Several real `snnkit run` processes at once on one results store and one checkpoint
folder: every run that trains is recorded whole, and a folder is never shared."""

from __future__ import annotations

import subprocess
import time

from fixtures.processes import cli_command, cli_env

from snnkit.results import ResultsStore

RUN = ["run", "--grad", "bptt", "--hidden", "8", "--data-opt", "size=128", "--batch-size", "16",
       "--schedule", "none", "--epochs", "2", "--threads", "1", "--no-progress", "--db", "r.db"]  # fmt: skip


def start(folder, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(*RUN, *args),
        cwd=folder,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runs_share_a_store_but_never_a_folder(tmp_path):
    a = start(tmp_path, "--out", "one", "--seed", "1")
    b = start(tmp_path, "--out", "two", "--seed", "2")
    c = start(tmp_path, "--out", "one", "--seed", "1")  # races a for the folder
    results = {
        name: (p, *p.communicate(timeout=300)) for name, p in zip("abc", (a, b, c), strict=True)
    }
    codes = {name: p.returncode for name, (p, _, _) in results.items()}
    assert codes["b"] == 0, results["b"][2]
    # exactly one of a and c trains in "one"; the other stops with one line, exit 2: the
    # folder is in use, or (had the winner already finished) its checkpoint exists
    assert sorted((codes["a"], codes["c"])) == [0, 2], results
    loser = results["a" if codes["a"] == 2 else "c"]
    (line,) = loser[2].strip().splitlines()
    assert line.startswith("error: ")
    assert "is in use by another run (pid" in line or "exists from an earlier run" in line
    with ResultsStore(tmp_path / "r.db") as store:
        runs = store.runs(status=None)
    assert [(r.status, len(r.epochs)) for r in runs] == [("completed", 2)] * 2
    assert sorted(r.seed for r in runs) == [1, 2]
    assert {r.checkpoint for r in runs} == {
        str(tmp_path / "one" / "checkpoint.pt"),
        str(tmp_path / "two" / "checkpoint.pt"),
    }


def test_a_folder_in_use_is_refused_before_anything_is_recorded(tmp_path):
    first = start(tmp_path, "--out", "ck", "--epochs", "50")
    deadline = time.monotonic() + 120
    while not (tmp_path / "r.db").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the first run has claimed the folder when it records itself
    second = subprocess.run(
        cli_command(*RUN, "--out", "ck", "--seed", "9"),
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    first.terminate()
    first.communicate(timeout=120)
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert f"--out ck is in use by another run (pid {first.pid} on " in line
    with ResultsStore(tmp_path / "r.db") as store:
        (record,) = store.runs(status=None)  # only the first run, now interrupted
    assert record.pid == first.pid and record.status == "interrupted"
