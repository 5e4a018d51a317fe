"""Leaderboards: completed runs of the results store ranked per task, mean ± std over seeds.

Three parts, one job each: :mod:`~snnkit.leaderboard.ranking` groups runs into entries (task,
method, neuron and setting, aggregated over seeds), :mod:`~snnkit.leaderboard.rendering`
writes them (rich table cells, Markdown, CSV, HTML, JSON, PNG) and
:mod:`~snnkit.leaderboard.filling` trains the runs a board lacks.
"""

from snnkit.leaderboard.filling import EXECUTORS, fill
from snnkit.leaderboard.ranking import (
    Entry,
    conformance_errors,
    entries,
    recipe_diff,
    setting_key,
    setting_of,
)
from snnkit.leaderboard.rendering import FORMATS, HEADERS, cells, check_format, render, write
from snnkit.results import SeedStats, over_seeds

__all__ = [
    "Entry",
    "EXECUTORS",
    "FORMATS",
    "HEADERS",
    "SeedStats",
    "cells",
    "check_format",
    "conformance_errors",
    "entries",
    "fill",
    "over_seeds",
    "recipe_diff",
    "render",
    "setting_key",
    "setting_of",
    "write",
]
