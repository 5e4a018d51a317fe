"""Stopping a run cleanly on SIGINT, SIGTERM and SIGHUP.

Ctrl-C sends SIGINT; ``timeout``, ``kill``, SLURM pre-emption and ``docker stop`` send
SIGTERM; closing the terminal sends SIGHUP. Within :func:`stop_on_signals` each of them
raises :class:`Interrupted` in the main thread, so the training loop unwinds as for Ctrl-C:
the last finished epoch stays checkpointed and the run is recorded as interrupted. Inside
:func:`deferred` (writing a checkpoint and its record) a signal waits until the block ends,
so a checkpoint and the database never disagree. SIGKILL cannot be caught: such a run is
recognised as stale afterwards (:func:`snnkit.results.is_stale`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SIGNALS", "Interrupted", "deferred", "stop_on_signals"]

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; the CLI exits with ``128 + signal number`` (130 for
    Ctrl-C, 143 for SIGTERM). The training loop adds where to resume from."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_id: int | None = None
        self.db: str | None = None
        self.checkpoint: str | None = None
        self.epochs_done = 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state = threading.local()


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _handler(signum, frame) -> None:
    if _depth() > 0:
        _state.pending = signum  # raised when the deferred block ends
        return
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`; the previous handlers
    come back afterwards. Outside the main thread (where Python delivers signals) it
    changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Within: a stop signal is held back and raised as :class:`Interrupted` when the
    block has finished (a block that fails keeps its own exception)."""
    _state.depth = _depth() + 1
    try:
        yield
    finally:
        _state.depth -= 1
        pending = getattr(_state, "pending", None) if _state.depth == 0 else None
        _state.pending = None if _state.depth == 0 else getattr(_state, "pending", None)
    if pending is not None:
        raise Interrupted(pending)
