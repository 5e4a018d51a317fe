"""Tests for the SQLite results store (snnkit.results)."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from snnkit.errors import SnnkitError
from snnkit.leaderboard import entries
from snnkit.results import (
    SCHEMA_VERSION,
    STALE_AFTER_S,
    ResultsStore,
    RunRecord,
    is_stale,
    over_seeds,
    this_host,
)

VERSIONS = {"snnkit": "0.1.0", "torch": "2.13", "python": "3.11"}


class _Scalar:
    """Duck-typed stand-in for a numpy/torch scalar."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def _start(store: ResultsStore, **overrides: object) -> int:
    kwargs: dict = {
        "method": "bptt",
        "neuron": "lif",
        "dataset": "shd",
        "seed": 0,
        "config": {"lr": 1e-3, "layers": [128, 20], "nested": {"beta": 0.9}},
        "versions": VERSIONS,
        "device": "cpu",
    }
    kwargs.update(overrides)
    return store.start_run(**kwargs)


def test_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultsStore(db) as store:
        run_id = _start(store, seed=7)
        assert store.get(run_id).status == "running"
        assert store.get(run_id).finished is None
        for epoch in range(3):
            store.log_epoch(run_id, epoch, {"loss": 1.0 / (epoch + 1), "acc": _Scalar(0.5)})
        store.finish_run(
            run_id,
            test_accuracy=0.81,
            train_accuracy=0.9,
            seconds_per_epoch=12.5,
            peak_memory_mb=640.0,
            summary={"best_epoch": 2},
        )
    with ResultsStore(db) as store:  # reopened: data was persisted
        record = store.get(run_id)
    assert isinstance(record, RunRecord)
    assert record.id == run_id
    assert record.status == "completed"
    assert (record.method, record.neuron, record.dataset, record.seed) == ("bptt", "lif", "shd", 7)
    assert record.config == {"lr": 1e-3, "layers": [128, 20], "nested": {"beta": 0.9}}
    assert record.versions == VERSIONS
    assert record.device == "cpu"
    assert record.test_accuracy == 0.81
    assert record.train_accuracy == 0.9
    assert record.seconds_per_epoch == 12.5
    assert record.peak_memory_mb == 640.0
    assert record.summary == {"best_epoch": 2}
    assert record.epochs == [{"epoch": e, "loss": 1.0 / (e + 1), "acc": 0.5} for e in range(3)]
    assert record.started.endswith("+00:00") and record.finished is not None
    assert record.finished >= record.started


def test_epochs_in_epoch_order_and_nan_stored_as_null(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        run_id = _start(store)
        for epoch in (2, 0, 1):
            store.log_epoch(run_id, epoch, {"loss": float("nan") if epoch == 1 else 0.5})
        store.finish_run(run_id, test_accuracy=float("nan"))
        record = store.get(run_id)
        assert [e["epoch"] for e in record.epochs] == [0, 1, 2]
        assert record.epochs[1]["loss"] is None
        assert record.test_accuracy is None
        raw = store._db.execute("SELECT metrics_json FROM epochs WHERE epoch = 1").fetchone()[0]
        assert "NaN" not in raw and json.loads(raw) == {"epoch": 1, "loss": None}


def test_log_epoch_twice_replaces(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        run_id = _start(store)
        store.log_epoch(run_id, 0, {"loss": 2.0})
        store.log_epoch(run_id, 1, {"loss": 1.5, "stale": True})
        store.log_epoch(run_id, 1, {"loss": 1.0})  # resumed run re-logs epoch 1
        assert store.get(run_id).epochs == [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.0}]
        count = store._db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        assert count == 2


def test_runs_filtering_and_summary(tmp_path: Path) -> None:
    accs = [0.80, 0.84, 0.83]
    speeds = [10.0, 11.0, 12.0]
    with ResultsStore(tmp_path / "r.db") as store:
        for seed, (acc, speed) in enumerate(zip(accs, speeds, strict=True)):
            rid = _start(store, seed=seed)
            store.finish_run(rid, test_accuracy=acc, seconds_per_epoch=speed)
        # Same group, but not completed: must not count.
        store.finish_run(_start(store, seed=9), status="failed", test_accuracy=0.0)
        _start(store, seed=10)  # still running
        # Other groups.
        rid = _start(store, method="eprop", seed=0)
        store.finish_run(rid, test_accuracy=0.9, seconds_per_epoch=5.0)
        rid = _start(store, dataset="nmnist", neuron="alif", seed=0)
        store.finish_run(rid, test_accuracy=0.5)

        assert len(store.runs()) == 5
        assert len(store.runs(status=None)) == 7
        assert [r.seed for r in store.runs(status="failed")] == [9]
        assert [r.seed for r in store.runs(status="running")] == [10]
        assert {r.seed for r in store.runs(dataset="shd", method="bptt", neuron="lif")} == {0, 1, 2}
        assert [r.method for r in store.runs(method="eprop")] == ["eprop"]
        assert [r.dataset for r in store.runs(neuron="alif")] == ["nmnist"]
        assert store.runs(dataset="nope") == []
        with pytest.raises(SnnkitError):
            store.runs(status="bogus")

        board = entries(store)
        assert [(e.dataset, e.method, e.neuron) for e in board] == [
            ("nmnist", "bptt", "alif"),
            ("shd", "eprop", "lif"),  # 0.90 mean ranks above 0.823
            ("shd", "bptt", "lif"),
        ]
        group = board[2]
        assert len(group.runs) == 3
        assert group.seeds == [0, 1, 2]
        assert group.accuracy_mean == pytest.approx(statistics.mean(accs))
        assert group.accuracy_std == pytest.approx(statistics.stdev(accs))
        assert group.stats("seconds_per_epoch").mean == pytest.approx(statistics.mean(speeds))
        single = board[1]
        assert len(single.runs) == 1 and single.accuracy_std is None  # one seed: no spread
        assert board[0].seconds_per_epoch is None
        assert [e.dataset for e in entries(store, dataset="shd")] == ["shd", "shd"]


def test_finish_run_validates_status(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        rid = _start(store)
        with pytest.raises(SnnkitError, match="status"):
            store.finish_run(rid, status="done")
        store.finish_run(rid, status="interrupted")
        assert store.get(rid).status == "interrupted"


def _writer(path: str, worker: int, barrier: object) -> None:
    with ResultsStore(path) as store:
        barrier.wait(timeout=60)  # type: ignore[attr-defined]
        for i in range(10):
            rid = store.start_run(
                method=f"m{worker}",
                neuron="lif",
                dataset="shd",
                seed=i,
                config={"worker": worker, "i": i},
                versions=VERSIONS,
                device="cpu",
            )
            for epoch in range(5):
                store.log_epoch(rid, epoch, {"loss": 1.0 / (epoch + 1), "worker": worker})
            store.finish_run(rid, test_accuracy=0.5 + worker / 10, seconds_per_epoch=1.0)


def test_concurrent_writers(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(db, w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]

    with ResultsStore(db) as store:
        completed = store.runs()
        assert len(completed) == 40
        assert len(store.runs(status=None)) == 40
        assert all(len(r.epochs) == 5 for r in completed)
        assert sorted((r.config["worker"], r.config["i"]) for r in completed) == [
            (w, i) for w in range(4) for i in range(10)
        ]
        assert Counter(r.method for r in completed) == {f"m{w}": 10 for w in range(4)}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 200
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SnnkitError, match="does not exist"):
        ResultsStore(tmp_path / "no" / "such" / "dir" / "r.db")


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is definitely not sqlite\x00\xff" * 200)
    with pytest.raises(SnnkitError, match="not a SQLite database"):
        ResultsStore(path)


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(SnnkitError, match="not an snnkit results database"):
        ResultsStore(path)


def test_unknown_run_id(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        with pytest.raises(SnnkitError, match="no run with id 42"):
            store.get(42)
        with pytest.raises(SnnkitError, match="no run with id 42"):
            store.log_epoch(42, 0, {"loss": 1.0})
        with pytest.raises(SnnkitError, match="no run with id 42"):
            store.finish_run(42)


def test_newer_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    conn.commit()
    conn.close()
    with pytest.raises(SnnkitError, match="newer"):
        ResultsStore(path)


def test_unserialisable_config_and_closed_store(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    with pytest.raises(SnnkitError, match="JSON"):
        _start(store, config={"fn": object()})
    assert store.runs(status=None) == []  # nothing half-written
    store.close()
    store.close()  # idempotent
    with pytest.raises(SnnkitError, match="closed"):
        store.runs()


def test_a_seed_trained_twice_weighs_once(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        for seed, acc in ((0, 0.80), (0, 0.90), (1, 0.70)):
            store.finish_run(_start(store, seed=seed), test_accuracy=acc)
        (group,) = entries(store)
        runs = store.runs()
    stats = over_seeds(runs, "test_accuracy")
    assert stats.per_seed == {0: pytest.approx(0.85), 1: 0.70}
    assert stats.mean == pytest.approx(0.775)  # not (0.8 + 0.9 + 0.7) / 3
    assert stats.std == pytest.approx(statistics.stdev([0.85, 0.70]))
    assert len(group.runs) == 3 and group.seeds == [0, 1] and group.duplicates == 1
    assert group.accuracy_mean == pytest.approx(0.775)
    assert over_seeds(runs[:1], "test_accuracy").std is None
    assert over_seeds([], "test_accuracy").mean is None


def test_a_version_1_database_gains_the_process_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, finished TEXT,
            status TEXT NOT NULL, method TEXT NOT NULL, neuron TEXT NOT NULL,
            dataset TEXT NOT NULL, seed INTEGER NOT NULL, config_json TEXT NOT NULL,
            versions_json TEXT NOT NULL, device TEXT NOT NULL, test_accuracy REAL,
            train_accuracy REAL, seconds_per_epoch REAL, peak_memory_mb REAL,
            summary_json TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE epochs (run_id INTEGER NOT NULL, epoch INTEGER NOT NULL,
            metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
        INSERT INTO runs (started, status, method, neuron, dataset, seed, config_json,
            versions_json, device, test_accuracy)
            VALUES ('2026-01-01T00:00:00.000+00:00', 'completed', 'bptt', 'lif', 'shd', 0,
                    '{}', '{}', 'cpu', 0.8),
                   ('2026-01-01T00:00:00.000+00:00', 'running', 'bptt', 'lif', 'shd', 1,
                    '{}', '{}', 'cpu', NULL);
        """
    )
    conn.commit()
    conn.close()
    with ResultsStore(path) as store:
        old, dead = store.runs(status=None)
        assert old.test_accuracy == 0.8 and old.pid is None and old.checkpoint is None
        assert dead.state == "stale"  # no heartbeat, started long ago
        new = _start(store, seed=2, checkpoint=tmp_path / "c" / "checkpoint.pt")
        record = store.get(new)
    assert record.pid == os.getpid() and record.host == this_host()
    assert record.checkpoint == str(tmp_path / "c" / "checkpoint.pt")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    conn.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_record_is_stale_once_its_process_is_gone(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        record = store.get(_start(store))
        finished = store.get(_start(store, seed=1))
        store.finish_run(finished.id, status="interrupted")
        finished = store.get(finished.id)
    assert record.state == "running" and not is_stale(record)  # this very process
    assert finished.state == "interrupted"
    assert is_stale(replace(record, pid=_dead_pid()))
    now = datetime.fromisoformat(record.heartbeat)
    later = now + timedelta(seconds=STALE_AFTER_S + 1)
    elsewhere = replace(record, host="another-machine", pid=1)
    assert not is_stale(elsewhere, now=now + timedelta(seconds=STALE_AFTER_S - 1))
    assert is_stale(elsewhere, now=later)  # no sign of life for too long
    assert is_stale(record, now=later)  # alive pid but silent: a reused pid, or hung


def test_heartbeat_and_resume_run(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        rid = _start(store)
        first = store.get(rid).heartbeat
        with store.beating(rid, every=0.02):
            deadline = time.monotonic() + 10
            while store.get(rid).heartbeat == first and time.monotonic() < deadline:
                time.sleep(0.02)
        assert store.get(rid).heartbeat > first
        store.finish_run(rid, status="interrupted")
        assert [r.id for r in store.resumable()] == [rid]
        store.resume_run(rid, tmp_path / "moved" / "checkpoint.pt")
        record = store.get(rid)
        assert record.status == "running" and record.finished is None
        assert record.checkpoint == str(tmp_path / "moved" / "checkpoint.pt")
        assert store.resumable() == []
