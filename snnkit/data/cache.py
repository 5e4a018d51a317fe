"""On-disk cache of preprocessed event recordings, keyed by a hash of what made them.

An entry is a directory ``<root>/<key>/`` holding one source split as ragged arrays:
``times.f32`` (ms) and ``channels.i32`` (flat input index), concatenated over recordings
and memory-mapped on load, plus ``offsets.npy`` ``[S+1]``, ``labels.npy`` ``[S]``,
``groups.npy`` ``[S]`` (speaker/user, -1 = none) and ``meta.json`` (the payload that was
hashed, for inspection). ``key`` is the SHA-256 of the canonical JSON of that payload
(dataset, source split, source file fingerprint, the whole transform chain, cache format),
so changing any transform, or replacing the raw files, never serves a stale entry.
Entries are written to a temporary directory and renamed into place (never torn).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "CachedRecordings", "RecordingWriter", "cache_key", "entries", "get_or_build"]

FORMAT = 1


def cache_key(payload: Mapping[str, Any]) -> str:
    """Hex SHA-256 (first 24 digits) of the canonical JSON of ``payload``."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class CachedRecordings:
    """One cached source split: ragged ``times``/``channels`` with per-recording metadata."""

    offsets: np.ndarray
    times: np.ndarray
    channels: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    meta: dict[str, Any]
    path: Path

    def __len__(self) -> int:
        return len(self.labels)

    def recording(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (ms, float32) and channels (int32) of recording ``i``."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.times[lo:hi], self.channels[lo:hi]


class RecordingWriter:
    """Streams recordings into a new entry directory (memory: one recording at a time)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True)
        self._times = open(directory / "times.f32", "wb")  # noqa: SIM115 - closed in finish
        self._channels = open(directory / "channels.i32", "wb")  # noqa: SIM115
        self._counts: list[int] = []
        self._labels: list[int] = []
        self._groups: list[int] = []

    def add(self, times: np.ndarray, channels: np.ndarray, label: int, group: int = -1) -> None:
        """Append one recording (times in ms, sorted ascending, and flat channels)."""
        self._times.write(np.ascontiguousarray(times, dtype=np.float32).tobytes())
        self._channels.write(np.ascontiguousarray(channels, dtype=np.int32).tobytes())
        self._counts.append(len(times))
        self._labels.append(int(label))
        self._groups.append(int(group))

    def close(self) -> None:
        self._times.close()
        self._channels.close()

    def finish(self, meta: Mapping[str, Any]) -> None:
        self.close()
        offsets = np.zeros(len(self._counts) + 1, dtype=np.int64)
        np.cumsum(self._counts, out=offsets[1:])
        np.save(self.directory / "offsets.npy", offsets)
        np.save(self.directory / "labels.npy", np.asarray(self._labels, dtype=np.int64))
        np.save(self.directory / "groups.npy", np.asarray(self._groups, dtype=np.int64))
        (self.directory / "meta.json").write_text(json.dumps(dict(meta), indent=1, default=str))


def _memmap(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def load(directory: Path) -> CachedRecordings | None:
    """The entry in ``directory``, or ``None`` if it is absent or incomplete/corrupt."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        offsets = np.load(directory / "offsets.npy")
        labels = np.load(directory / "labels.npy")
        groups = np.load(directory / "groups.npy")
        count = int(offsets[-1])
        sizes_ok = (
            (directory / "times.f32").stat().st_size == 4 * count
            and (directory / "channels.i32").stat().st_size == 4 * count
            and len(labels) == len(groups) == len(offsets) - 1
        )
        if not sizes_ok:
            return None
        times = _memmap(directory / "times.f32", np.dtype(np.float32), count)
        channels = _memmap(directory / "channels.i32", np.dtype(np.int32), count)
    except (OSError, ValueError, IndexError, json.JSONDecodeError):
        return None
    return CachedRecordings(offsets, times, channels, labels, groups, meta, directory)


def get_or_build(
    root: Path, payload: Mapping[str, Any], build: Callable[[RecordingWriter], None]
) -> CachedRecordings:
    """The entry for ``payload`` under ``root``; built with ``build(writer)`` when missing.

    A corrupt entry is rebuilt. ``build`` raising leaves nothing behind.
    """
    key = cache_key(payload)
    final = root / key
    found = load(final)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    writer = RecordingWriter(tmp)
    try:
        build(writer)
        writer.finish({"key": key, **payload})
        if final.exists() and load(final) is None:
            shutil.rmtree(final, ignore_errors=True)  # a corrupt leftover
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same entry first
            if load(final) is None:
                raise
    finally:
        writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result = load(final)
    assert result is not None, f"cache entry {final} unreadable right after writing"
    return result


def entries(root: Path, dataset: str) -> list[Path]:
    """Complete cache entries under ``root`` made for ``dataset``."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not (child / "meta.json").is_file():
            continue
        try:
            meta = json.loads((child / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if meta.get("dataset") == dataset:
            found.append(child)
    return found
