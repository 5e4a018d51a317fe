"""Two exception types the CLI prints as a single line: a user mistake (exit code 2) and a
job that failed for a reason outside the user's options (exit code 1)."""

from __future__ import annotations


class SnnkitError(ValueError):
    """A mistake the user can fix (bad option, unsupported combination, missing file).

    The message says what is wrong, why, and what to do; the CLI shows it without a
    traceback and exits with code 2.
    """


class JobFailed(RuntimeError):
    """A job that could not be done although the options were right (the network is
    unreachable, a download broke off). The message says what failed and what to try; the
    CLI shows it without a traceback and exits with code 1."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`SnnkitError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SnnkitError(message)


class SilentLayerWarning(UserWarning):
    """A hidden layer fired no spike in a whole epoch: nothing it computes can be learned
    (every gradient through it is zero). The message says what to change."""
