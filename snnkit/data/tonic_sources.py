"""Where the four tonic datasets live on disk and how their recordings are read.

snnkit reads the files with tonic's own dataset classes (``tonic.datasets.NMNIST``,
``DVSGesture``, ``SHD``, ``SSC``), subclassed only so that they never download: a missing
file is a one-line :class:`SnnkitError` naming the expected files and the command that
fetches them (``snnkit datasets download NAME``). tonic (and h5py) are imported lazily,
so ``import snnkit`` works without them.

Layout under the data directory ``D`` (the one tonic's ``save_to=D`` produces):

- ``D/NMNIST/{Train,Test}/<digit>/*.bin``
- ``D/DVSGesture/{ibmGestureTrain,ibmGestureTest}/user<NN>_<lighting>/<label>.npy``
- ``D/SHD/shd_{train,test}.h5``
- ``D/SSC/ssc_{train,valid,test}.h5``
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnkit.errors import JobFailed, SnnkitError

__all__ = [
    "SOURCES",
    "Recording",
    "Source",
    "check_present",
    "download",
    "fingerprint",
    "missing_splits",
    "read_split",
    "require_tonic",
]

INSTALL = "pip install 'snnkit[datasets]'"
HSD_KEYS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


@dataclass(frozen=True)
class Source:
    """One tonic dataset: its class, sensor, classes and on-disk layout per source split."""

    name: str
    tonic_class: str
    kind: str  # "camera" or "audio"
    sensor_size: tuple[int, int, int]  # tonic's (W, H, P)
    classes: tuple[str, ...]
    layout: dict[str, str]  # source split -> path under D (a folder or an .h5 file)
    tonic_args: dict[str, dict[str, Any]]  # source split -> constructor arguments
    group: str | None = None  # what groups recordings: "speaker", "user" or None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


SOURCES: dict[str, Source] = {
    "nmnist": Source(
        name="nmnist",
        tonic_class="NMNIST",
        kind="camera",
        sensor_size=(34, 34, 2),
        classes=tuple(str(d) for d in range(10)),
        layout={"train": "NMNIST/Train", "test": "NMNIST/Test"},
        tonic_args={"train": {"train": True}, "test": {"train": False}},
        note="<digit>/*.bin",
    ),
    "dvsgesture": Source(
        name="dvsgesture",
        tonic_class="DVSGesture",
        kind="camera",
        sensor_size=(128, 128, 2),
        classes=(
            "hand clapping",
            "right hand wave",
            "left hand wave",
            "right arm clockwise",
            "right arm counter-clockwise",
            "left arm clockwise",
            "left arm counter-clockwise",
            "arm roll",
            "air drums",
            "air guitar",
            "other gestures",
        ),
        layout={"train": "DVSGesture/ibmGestureTrain", "test": "DVSGesture/ibmGestureTest"},
        tonic_args={"train": {"train": True}, "test": {"train": False}},
        group="user",
        note="user<NN>_<lighting>/<label>.npy",
    ),
    "shd": Source(
        name="shd",
        tonic_class="SHD",
        kind="audio",
        sensor_size=(700, 1, 1),
        classes=tuple(f"digit {i}" for i in range(20)),
        layout={"train": "SHD/shd_train.h5", "test": "SHD/shd_test.h5"},
        tonic_args={"train": {"train": True}, "test": {"train": False}},
        group="speaker",
    ),
    "ssc": Source(
        name="ssc",
        tonic_class="SSC",
        kind="audio",
        sensor_size=(700, 1, 1),
        classes=tuple(f"command {i}" for i in range(35)),
        layout={
            "train": "SSC/ssc_train.h5",
            "valid": "SSC/ssc_valid.h5",
            "test": "SSC/ssc_test.h5",
        },
        tonic_args={
            "train": {"split": "train"},
            "valid": {"split": "valid"},
            "test": {"split": "test"},
        },
        group="speaker",
    ),
}


@dataclass
class Recording:
    """One recording as read by tonic: pixel/unit coordinates, times in microseconds."""

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    t: np.ndarray  # microseconds (int64)
    label: int
    group: int


def require_tonic():
    """Import ``tonic.datasets`` or raise a one-line error saying how to install it."""
    try:
        import numpy.lib.recfunctions  # noqa: F401  (tonic's DVSGesture uses it unimported)
        import tonic.datasets
    except ImportError as exc:
        raise SnnkitError(
            f"the neuromorphic datasets need tonic and h5py ({exc.name or exc} is not "
            f"installed); install them with: {INSTALL}"
        ) from None
    return tonic.datasets


def _present(source: Source, data_dir: Path, split: str) -> bool:
    path = data_dir / source.layout[split]
    if path.suffix == ".h5":
        return path.is_file()
    pattern = "*/*.bin" if source.name == "nmnist" else "*/*.npy"
    return path.is_dir() and next(path.glob(pattern), None) is not None


def missing_splits(source: Source, data_dir: Path) -> list[str]:
    """Source splits whose files are not under ``data_dir``."""
    return [s for s in source.layout if not _present(source, data_dir, s)]


def check_present(source: Source, data_dir: Path, splits: list[str] | None = None) -> None:
    """Raise a one-line error naming the expected files if any of ``splits`` is missing."""
    missing = [s for s in (splits or list(source.layout)) if not _present(source, data_dir, s)]
    if missing:
        where = ", ".join(
            str(data_dir / source.layout[s]) + (f"/{source.note}" if source.note else "")
            for s in missing
        )
        raise SnnkitError(
            f"dataset '{source.name}' is not in {data_dir}: expected {where}; "
            f"fetch it with: snnkit datasets download {source.name} --data-dir {data_dir}"
        )


def fingerprint(source: Source, data_dir: Path, split: str) -> list[list[Any]]:
    """Cheap identity of a split's files: (name, size, mtime) of the file, or of the split
    folder and its subfolders (adding or removing a recording changes a folder's mtime)."""
    path = data_dir / source.layout[split]
    paths = [path]
    if path.is_dir():
        paths += sorted(p for p in path.iterdir() if p.is_dir())
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p.relative_to(data_dir)), st.st_size if p.is_file() else 0, st.st_mtime_ns])
    return out


def _offline_class(datasets_module, source: Source):
    """tonic's class under its own name (tonic files data under the class name), minus
    downloading: snnkit has already checked that the files are there."""
    base = getattr(datasets_module, source.tonic_class)

    def _no_download(self) -> None:
        raise SnnkitError(
            f"tonic tried to download '{source.name}'; snnkit never downloads silently, "
            f"fetch it with: snnkit datasets download {source.name}"
        )

    return type(
        base.__name__,
        (base,),
        {"download": _no_download, "_check_exists": lambda self: True},
    )


def _bad_file(source: Source, path: object, why: object) -> SnnkitError:
    return SnnkitError(
        f"{source.name}: cannot read {path}: {why}; the file is damaged or not in the "
        f"{source.tonic_class} format, delete it and fetch the dataset again "
        f"(snnkit datasets download {source.name})"
    )


def _check_hsd_file(source: Source, path: Path) -> np.ndarray:
    """Check an SHD/SSC HDF5 file's layout; return its speakers."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            absent = [k for k in HSD_KEYS if k not in f]
            if absent:
                raise _bad_file(source, path, f"it has no {', '.join(absent)}")
            n = len(f["labels"])
            sizes = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "extra/speaker")}
            if any(v != n for v in sizes.values()):
                raise _bad_file(
                    source, path, f"{n} labels but {sizes} entries (one per recording expected)"
                )
            return np.asarray(f["extra/speaker"][()], dtype=np.int64)
    except OSError as exc:
        raise _bad_file(source, path, exc) from None


def _open(source: Source, data_dir: Path, split: str, tonic_options: dict[str, Any]):
    datasets = require_tonic()
    cls = _offline_class(datasets, source)
    path = data_dir / source.layout[split]
    try:
        return cls(str(data_dir), **source.tonic_args[split], **tonic_options)
    except SnnkitError:
        raise
    except Exception as exc:  # tonic's constructors index folders and open files
        raise _bad_file(source, path, f"{type(exc).__name__}: {exc}") from None


def read_split(
    source: Source, data_dir: Path, split: str, tonic_options: dict[str, Any] | None = None
) -> tuple[Iterator[Recording], int, tuple[str, ...]]:
    """Open a source split with tonic; return (recordings, count, class names).

    Every recording is checked (coordinates inside the sensor, times >= 0, label a class);
    an unreadable or malformed file raises a one-line error naming it.
    """
    check_present(source, data_dir, [split])
    path = data_dir / source.layout[split]
    speakers = _check_hsd_file(source, path) if source.kind == "audio" else None
    ds = _open(source, data_dir, split, tonic_options or {})
    classes = tuple(
        c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(ds.classes).tolist()
    )
    count = len(ds)
    if count == 0:
        raise _bad_file(source, path, "it holds no recordings")
    width, height, polarities = source.sensor_size

    # recordings in path order: tonic lists folder contents in filesystem order, and the
    # validation split must not depend on the filesystem
    order = (
        sorted(range(count), key=lambda i: ds.data[i]) if source.kind == "camera" else range(count)
    )

    def recordings() -> Iterator[Recording]:
        for i in order:
            file = ds.data[i] if source.kind == "camera" else path
            if source.name == "nmnist" and os.path.getsize(file) % 5:
                raise _bad_file(source, file, "truncated (size is not a multiple of 5 bytes)")
            try:
                events, label = ds[i]
                x = np.asarray(events["x"], dtype=np.int64)
                t = np.asarray(events["t"], dtype=np.int64)
                if source.kind == "camera":
                    y = np.asarray(events["y"], dtype=np.int64)
                    p = np.asarray(events["p"], dtype=np.int64)
                else:
                    y = p = np.zeros_like(x)
            except SnnkitError:
                raise
            except Exception as exc:
                raise _bad_file(source, file, f"{type(exc).__name__}: {exc}") from None
            label = int(label)
            where = f"recording {i}" + (f" of {path}" if source.kind == "audio" else "")
            if not 0 <= label < len(classes):
                raise _bad_file(
                    source, file, f"{where} has label {label}, not in [0, {len(classes)})"
                )
            bad = (x < 0) | (x >= width) | (y < 0) | (y >= height) | (p < 0) | (p >= polarities)
            if bad.any():
                k = int(np.argmax(bad))
                raise _bad_file(
                    source,
                    file,
                    f"{where} has an event at x={x[k]}, y={y[k]}, p={p[k]} outside the "
                    f"{width}x{height}x{polarities} sensor",
                )
            if len(t) and t.min() < 0:
                raise _bad_file(source, file, f"{where} has a negative time")
            if source.kind == "camera":
                group = ds.users[i] if source.group == "user" else -1
            else:
                group = int(speakers[i])
            yield Recording(x, y, p, t, label, int(group))

    return recordings(), count, classes


def download(source: Source, data_dir: Path) -> None:
    """Fetch every missing split with tonic's own downloader (checksummed), explicitly. A
    failure (:class:`JobFailed`) removes the empty folders this call created."""
    datasets = require_tonic()
    cls = getattr(datasets, source.tonic_class)
    new = [p for p in (data_dir, *data_dir.parents) if not p.exists()]
    before = set(data_dir.iterdir()) if data_dir.is_dir() else set()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnnkitError(
            f"--data-dir {data_dir}: cannot create it ({exc.strerror or exc}); choose another path"
        ) from None
    for split in missing_splits(source, data_dir):
        try:
            cls(str(data_dir), **source.tonic_args[split])
        except Exception as exc:
            _remove_empty([p for p in data_dir.iterdir() if p not in before] + new)
            raise JobFailed(
                f"downloading {source.name} ({split}) into {data_dir} failed: "
                f"{type(exc).__name__}: {exc}; check the network, or fetch the files by hand "
                "(docs/datasets.md lists the sources and the layout)"
            ) from None


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` that holds nothing but empty folders (a partial download
    stays where it is)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for root, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):  # not empty
                os.rmdir(root)
