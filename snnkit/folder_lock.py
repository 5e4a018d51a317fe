"""An exclusive lock on a run folder, held for as long as a run writes there.

Two runs that resolve to the same checkpoint folder (identical settings started twice,
or one ``--out`` given to two runs) would overwrite each other's checkpoints; the second
one is refused instead. The lock is ``flock`` on ``<folder>/.lock``: the kernel drops it
when the holding process ends however it ends, so a killed run never leaves a stale
lock. The file stays (removing it would let two runs lock two different files).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from snnkit.errors import SnnkitError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock inside the ``with``; raise :class:`SnnkitError` if another
    process (or another ``with`` in this one) holds it."""
    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise SnnkitError(
                f"{folder} is in use by another snnkit run ({holder}); wait for it to "
                "finish, or pass --out DIR to train elsewhere"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
