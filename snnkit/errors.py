"""The one exception type for user mistakes: the CLI prints it as a single line."""

from __future__ import annotations


class SnnkitError(ValueError):
    """A mistake the user can fix (bad option, unsupported combination, missing file).

    The message says what is wrong, why, and what to do; the CLI shows it without a
    traceback and exits with code 2.
    """


def check(condition: bool, message: str) -> None:
    """Raise :class:`SnnkitError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SnnkitError(message)
