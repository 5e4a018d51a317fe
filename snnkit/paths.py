"""Output paths checked before any work starts: a run must not train for an hour and then
fail to write its result. Each check tries what the write will do (create a file in the
folder) and turns a failure into one :class:`SnnkitError` line naming the option."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from snnkit.errors import SnnkitError

__all__ = ["writable_dir", "writable_file"]


def _probe(folder: Path, flag: str, path: Path) -> None:
    """Create and remove a file in ``folder`` (root ignores permission bits; /proc does not
    take files: only trying tells)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".snnkit-probe-")
    except OSError as exc:
        raise SnnkitError(
            f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc}); choose another path"
        ) from None
    os.close(fd)
    os.unlink(probe)


def writable_file(path: str | os.PathLike, flag: str) -> Path:
    """Check that the file ``path`` can be created or replaced; returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise SnnkitError(f"{flag} {path}: is a directory; pass a file path")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise SnnkitError(f"{flag} {path}: directory {folder} {what}; create it first")
    if path.exists() and not os.access(path, os.W_OK):
        raise SnnkitError(f"{flag} {path}: the file is read-only; choose another path")
    _probe(folder, flag, path)
    return path


def writable_dir(path: str | os.PathLike, flag: str) -> Path:
    """Check that the folder ``path`` exists and takes files, or can be created (nothing is
    created here); returns it as a Path."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SnnkitError(
            f"{flag} {path}: {existing} is a file, not a directory; choose another path"
        )
    _probe(existing, flag, path)
    return path
