"""Results store: every ``snnkit run`` recorded in an embedded SQLite database.

One row per run (configuration, versions, final metrics) plus one row per epoch. The
database uses WAL journalling, a generous busy timeout and short ``BEGIN IMMEDIATE``
transactions, so several processes can write to the same file at once: their writes
serialise instead of failing, and no record is lost.

A run records the process that trains it (pid and host) and a heartbeat it refreshes
while it lives (:meth:`ResultsStore.beating`). A ``running`` record whose process is gone
(killed, out of memory, the machine rebooted) is *stale* (:func:`is_stale`): no report
counts it as running, and ``snnkit run --resume`` continues it from its checkpoint.
"""

from __future__ import annotations

import json
import math
import operator
import os
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snnkit.errors import SnnkitError

SCHEMA_VERSION = 2
DEFAULT_DB = "snnkit-results.db"

STATUSES = ("running", "completed", "failed", "interrupted")
_FINAL_STATUSES = ("completed", "failed", "interrupted")
_BUSY_TIMEOUT_S = 30.0
HEARTBEAT_S = 30.0  # a running process refreshes its record's heartbeat this often
STALE_AFTER_S = 600.0  # a running record with no heartbeat for this long is stale

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    started           TEXT NOT NULL,
    finished          TEXT,
    status            TEXT NOT NULL,
    method            TEXT NOT NULL,
    neuron            TEXT NOT NULL,
    dataset           TEXT NOT NULL,
    seed              INTEGER NOT NULL,
    config_json       TEXT NOT NULL,
    versions_json     TEXT NOT NULL,
    device            TEXT NOT NULL,
    test_accuracy     REAL,
    train_accuracy    REAL,
    seconds_per_epoch REAL,
    peak_memory_mb    REAL,
    summary_json      TEXT NOT NULL DEFAULT '{}',
    pid               INTEGER,
    host              TEXT,
    heartbeat         TEXT,
    checkpoint        TEXT
);
CREATE INDEX IF NOT EXISTS runs_group ON runs (dataset, method, neuron, status);
CREATE TABLE IF NOT EXISTS epochs (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch        INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""

_RUN_COLUMNS = (
    "id, started, finished, status, method, neuron, dataset, seed, config_json, versions_json, "
    "device, test_accuracy, train_accuracy, seconds_per_epoch, peak_memory_mb, summary_json, "
    "pid, host, heartbeat, checkpoint"
)
# columns schema version 1 lacked, added in place when such a database is opened
_ADDED_IN_2 = ("pid INTEGER", "host TEXT", "heartbeat TEXT", "checkpoint TEXT")


@dataclass(frozen=True)
class RunRecord:
    """One recorded training run, as stored."""

    id: int
    started: str  # ISO-8601 UTC
    finished: str | None
    status: str  # "running" | "completed" | "failed" | "interrupted"
    method: str
    neuron: str
    dataset: str
    seed: int
    config: dict
    versions: dict
    device: str
    test_accuracy: float | None
    train_accuracy: float | None
    seconds_per_epoch: float | None
    peak_memory_mb: float | None
    epochs: list[dict]  # per-epoch metrics in epoch order, each including "epoch"
    summary: dict = field(default_factory=dict)  # extra final metrics given to finish_run
    pid: int | None = None  # the process that trains (or last trained) the run
    host: str | None = None  # and its machine
    heartbeat: str | None = None  # ISO-8601 UTC: the last sign of life of that process
    checkpoint: str | None = None  # the run's checkpoint file, where it has one

    @property
    def state(self) -> str:
        """:attr:`status`, but ``"stale"`` for a running record whose process is gone."""
        return "stale" if is_stale(self) else self.status


def this_host() -> str:
    """The name runs record as their host."""
    return socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_stale(record: RunRecord, now: datetime | None = None) -> bool:
    """Whether a ``running`` record's process is gone: on this host, its pid is not alive;
    anywhere, its heartbeat (or its start, for records without one) is older than
    :data:`STALE_AFTER_S`, which also covers a reused pid and other hosts."""
    if record.status != "running":
        return False
    if record.host == this_host() and record.pid is not None and not _alive(record.pid):
        return True
    last = datetime.fromisoformat(record.heartbeat or record.started)
    return ((now or datetime.now(UTC)) - last).total_seconds() > STALE_AFTER_S


@dataclass(frozen=True)
class SeedStats:
    """One metric of a group of runs, over seeds: each seed's runs are averaged first, so a
    seed trained twice weighs as much as a seed trained once."""

    per_seed: dict[int, float]  # seed -> the mean over that seed's runs

    @property
    def seeds(self) -> list[int]:
        return sorted(self.per_seed)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.per_seed.values()) if self.per_seed else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds; None for fewer than two seeds."""
        return statistics.stdev(self.per_seed.values()) if len(self.per_seed) > 1 else None

    @property
    def max(self) -> float | None:
        return max(self.per_seed.values()) if self.per_seed else None


def over_seeds(records: Iterable[RunRecord], metric: str | Callable[[RunRecord], Any]) -> SeedStats:
    """``metric`` (a :class:`RunRecord` field such as ``test_accuracy``, else a key of its
    ``summary``, or a function of a record) per seed, for the runs that have it."""
    values: dict[int, list[float]] = {}
    for record in records:
        if callable(metric):
            value = metric(record)
        else:
            value = getattr(record, metric, None)
            if value is None:
                value = record.summary.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.setdefault(record.seed, []).append(float(value))
    return SeedStats({seed: statistics.fmean(v) for seed, v in sorted(values.items())})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _plain(value: Any) -> Any:
    """Convert ``value`` to plain JSON types: NaN/inf -> None, numpy/torch scalars -> Python."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalars (duck-typed, no import)
        try:
            return _plain(value.item())
        except (ValueError, RuntimeError, TypeError):
            if hasattr(value, "tolist"):  # multi-element array / tensor
                return _plain(value.tolist())
    raise SnnkitError(
        f"cannot store {type(value).__name__} value {value!r} in the results database: "
        "it is not JSON-serialisable; pass numbers, strings, lists or dicts instead"
    )


def _dumps(value: Any) -> str:
    return json.dumps(_plain(value), allow_nan=False, sort_keys=False)


def _number(value: Any, name: str) -> float | None:
    """A final metric as a finite float, or None (NaN/inf are stored as NULL)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SnnkitError(
            f"{name}={value!r} is not a number; the results store keeps it as a float; "
            "pass a number or None"
        ) from None
    return number if math.isfinite(number) else None


def _integer(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise SnnkitError(
            f"{name}={value!r} is not an integer; the results store keys on it; pass an int"
        ) from None


def _check_status(status: str, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        raise SnnkitError(
            f"unknown run status {status!r}; the results store knows only "
            f"{', '.join(allowed)}; pass one of those"
        )


class ResultsStore:
    """A SQLite-backed record of training runs; safe for concurrent writers across processes.

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_DB) -> None:
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        in_memory = self.path == ":memory:" or self.path.startswith("file:")
        if not in_memory:
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise SnnkitError(
                    f"cannot create results database {self.path}: directory {parent} does not "
                    "exist; create it first or choose another --db path"
                )
            if Path(self.path).is_dir():
                raise SnnkitError(
                    f"cannot open results database {self.path}: it is a directory; "
                    "pass a file path such as ./snnkit-results.db"
                )
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise SnnkitError(
                f"cannot open results database {self.path}: {exc}; "
                "check the path and its permissions"
            ) from None
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- connection handling -------------------------------------------------------------

    def _setup(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                version = self._create_schema(conn)
                break
            except sqlite3.OperationalError as exc:
                # Several processes creating the same file at once may briefly see it locked.
                if "locked" in str(exc) or "busy" in str(exc):
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                raise SnnkitError(
                    f"cannot open results database {self.path}: {exc}; "
                    "check the file and its permissions, or choose another --db path"
                ) from None
            except sqlite3.DatabaseError as exc:
                raise SnnkitError(
                    f"cannot open results database {self.path}: the file is not a SQLite "
                    f"database ({exc}); pass a different --db path or move the file away"
                ) from None
        if version > SCHEMA_VERSION:
            raise SnnkitError(
                f"results database {self.path} has schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this snnkit supports; upgrade snnkit or use another --db path"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if tables - {"sqlite_sequence"} and "meta" not in tables:
                raise SnnkitError(
                    f"{self.path} is a SQLite database but not an snnkit results database "
                    "(it has no meta table); pass a different --db path"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            try:
                version = int(row[0])
            except (TypeError, ValueError):
                raise SnnkitError(
                    f"results database {self.path} has an unreadable schema version "
                    f"{row[0]!r}; it was not written by snnkit; pass a different --db path"
                ) from None
            if version == 1:  # add what version 2 records about the training process
                for column in _ADDED_IN_2:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column}")
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
                )
                version = SCHEMA_VERSION
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return version

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SnnkitError(
                f"results store {self.path} is closed; it cannot be used after close(); "
                "open a new ResultsStore"
            )
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction; BEGIN IMMEDIATE takes the write lock up front."""
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so multi-statement reads see one consistent snapshot."""
        conn = self._db
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def start_run(
        self,
        *,
        method: str,
        neuron: str,
        dataset: str,
        seed: int,
        config: dict,
        versions: dict,
        device: str,
        checkpoint: str | os.PathLike | None = None,
    ) -> int:
        """Record a new run with status ``"running"``, trained by this process (pid, host,
        heartbeat now), and return its id."""
        now = _now()
        row = (
            now,
            str(method),
            str(neuron),
            str(dataset),
            _integer(seed, "seed"),
            _dumps(config),
            _dumps(versions),
            str(device),
            os.getpid(),
            this_host(),
            now,
            None if checkpoint is None else os.path.abspath(checkpoint),
        )
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (started, status, method, neuron, dataset, seed, config_json, "
                "versions_json, device, pid, host, heartbeat, checkpoint) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            run_id = cursor.lastrowid
        assert run_id is not None
        return run_id

    def resume_run(self, run_id: int, checkpoint: str | os.PathLike | None = None) -> None:
        """Mark a stopped run ``running`` again, now trained by this process (from
        ``checkpoint``, where it has moved)."""
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = 'running', finished = NULL, pid = ?, host = ?, "
                "heartbeat = ?, checkpoint = COALESCE(?, checkpoint) WHERE id = ?",
                (
                    os.getpid(),
                    this_host(),
                    _now(),
                    None if checkpoint is None else os.path.abspath(checkpoint),
                    run_id,
                ),
            )

    @contextmanager
    def beating(self, run_id: int, every: float = HEARTBEAT_S) -> Iterator[None]:
        """While inside, a thread refreshes the run's heartbeat every ``every`` seconds
        (through its own connection), so that the record shows this process alive even
        while one long epoch or batch runs."""
        if self.path == ":memory:":  # no other connection can see it: nothing to beat
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            try:
                while not stop.wait(every):
                    try:
                        conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (_now(), run_id))
                    except sqlite3.Error:
                        pass  # busy for long: the next beat tries again
            finally:
                conn.close()

        thread = threading.Thread(target=beat, name=f"snnkit-heartbeat-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def log_epoch(self, run_id: int, epoch: int, metrics: dict) -> None:
        """Store one epoch's metrics, replacing any earlier record of that epoch."""
        epoch = _integer(epoch, "epoch")
        record = {"epoch": epoch, **{k: v for k, v in metrics.items() if k != "epoch"}}
        text = _dumps(record)
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT INTO epochs (run_id, epoch, metrics_json) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, epoch) DO UPDATE SET metrics_json = excluded.metrics_json",
                (run_id, epoch, text),
            )
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (_now(), run_id))

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "completed",
        test_accuracy: float | None = None,
        train_accuracy: float | None = None,
        seconds_per_epoch: float | None = None,
        peak_memory_mb: float | None = None,
        summary: dict | None = None,
    ) -> None:
        """Mark a run finished with its final metrics (NaN/inf are stored as None)."""
        _check_status(status, _FINAL_STATUSES)
        values = (
            _now(),
            status,
            _number(test_accuracy, "test_accuracy"),
            _number(train_accuracy, "train_accuracy"),
            _number(seconds_per_epoch, "seconds_per_epoch"),
            _number(peak_memory_mb, "peak_memory_mb"),
            _dumps(summary or {}),
            run_id,
        )
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET finished = ?, status = ?, test_accuracy = ?, "
                "train_accuracy = ?, seconds_per_epoch = ?, peak_memory_mb = ?, "
                "summary_json = ? WHERE id = ?",
                values,
            )

    def _require_run(self, conn: sqlite3.Connection, run_id: int) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise SnnkitError(
                f"no run with id {run_id} in results database {self.path}; "
                "it was never started there; use the id returned by start_run"
            )

    # -- reading -------------------------------------------------------------------------

    def get(self, run_id: int) -> RunRecord:
        """The run with id ``run_id``."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise SnnkitError(
                    f"no run with id {run_id} in results database {self.path}; "
                    "list the recorded runs to find a valid id"
                )
            epochs = self._epochs(conn, [run_id])
        return self._record(row, epochs.get(run_id, []))

    def runs(
        self,
        *,
        dataset: str | None = None,
        method: str | None = None,
        neuron: str | None = None,
        status: str | None = "completed",
    ) -> list[RunRecord]:
        """Runs matching every given filter (``status=None`` for any status), oldest first."""
        if status is not None:
            _check_status(status, STATUSES)
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("dataset", dataset),
            ("method", method),
            ("neuron", neuron),
            ("status", status),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs{where} ORDER BY id", params
            ).fetchall()
            epochs = self._epochs(conn, [row[0] for row in rows])
        return [self._record(row, epochs.get(row[0], [])) for row in rows]

    def resumable(self) -> list[RunRecord]:
        """Runs that stopped before they finished, newest first: interrupted ones and
        stale ones (their process died)."""
        return [r for r in reversed(self.runs(status=None)) if r.state in ("interrupted", "stale")]

    @staticmethod
    def _epochs(conn: sqlite3.Connection, run_ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        chunk = 500  # stay well below SQLite's limit on bound parameters
        for start in range(0, len(run_ids), chunk):
            ids = run_ids[start : start + chunk]
            marks = ", ".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT run_id, metrics_json FROM epochs WHERE run_id IN ({marks}) "
                "ORDER BY run_id, epoch",
                ids,
            ).fetchall()
            for run_id, text in rows:
                out.setdefault(run_id, []).append(json.loads(text))
        return out

    @staticmethod
    def _record(row: tuple, epochs: list[dict]) -> RunRecord:
        return RunRecord(
            id=row[0],
            started=row[1],
            finished=row[2],
            status=row[3],
            method=row[4],
            neuron=row[5],
            dataset=row[6],
            seed=row[7],
            config=json.loads(row[8]),
            versions=json.loads(row[9]),
            device=row[10],
            test_accuracy=row[11],
            train_accuracy=row[12],
            seconds_per_epoch=row[13],
            peak_memory_mb=row[14],
            epochs=epochs,
            summary=json.loads(row[15]),
            pid=row[16],
            host=row[17],
            heartbeat=row[18],
            checkpoint=row[19],
        )
