"""Rendering: leaderboard entries as table cells, Markdown, CSV, HTML, JSON or a PNG plot
(matplotlib, ``pip install 'snnkit[plot]'``)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from snnkit.errors import SnnkitError
from snnkit.leaderboard.ranking import Entry
from snnkit.results import SeedStats

FORMATS = ("markdown", "csv", "html", "json", "png")
_SUFFIXES = {".md": "markdown", ".csv": "csv", ".html": "html", ".json": "json", ".png": "png"}


def _percent(mean: float | None, std: float | None) -> str:
    """``97.50 ± 0.50 %``; ``97.50 ± — %`` for one seed (no spread to show)."""
    if mean is None:
        return "—"
    return f"{100 * mean:.2f} ± {'—' if std is None else f'{100 * std:.2f}'} %"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


HEADERS = (
    "#",
    "task",
    "method",
    "neuron",
    "setting",
    "seeds",
    "test accuracy",
    "at best val.",
    "s / epoch",
    "CPU s / epoch",
    "peak MB",
    "grad. error",
    "spikes",
    "dead",
)


def _fraction(stats: SeedStats) -> str:
    return "—" if stats.mean is None else f"{stats.mean:.3f}"


def cells(entry: Entry) -> tuple[str, ...]:
    """The displayed cells of one entry, in :data:`HEADERS` order."""
    seeds = f"{len(entry.seeds)} ({','.join(map(str, entry.seeds))})"
    if entry.duplicates:
        seeds += f" +{entry.duplicates} repeat(s) averaged"
    best = entry.best_validation_accuracy
    return (
        str(entry.rank),
        entry.dataset,
        entry.method,
        entry.neuron,
        entry.label or "—",
        seeds,
        _percent(entry.accuracy_mean, entry.accuracy_std),
        _percent(best.mean, best.std),
        _number(entry.seconds_per_epoch, 2),
        _number(entry.cpu_seconds_per_epoch, 2),
        _number(entry.peak_memory_mb, 0),
        entry.conformance,
        _fraction(entry.spike_rate),
        _fraction(entry.dead_fraction),
    )


def render(board: list[Entry], fmt: str) -> str:
    """The leaderboard as text: ``markdown``, ``csv``, ``html`` or ``json``."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(e)) + " |" for e in board]
        return "\n".join(lines) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        rows = [e.row() for e in board]
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["rank"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "seeds": " ".join(map(str, row["seeds"]))})
        return buffer.getvalue()
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(e)) + "</tr>"
            for e in board
        )
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>snnkit leaderboard'
            "</title></head><body>\n<table>\n<thead><tr>"
            f"{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n</body></html>\n"
        )
    if fmt == "json":
        return json.dumps([e.row() for e in board], indent=2) + "\n"
    raise SnnkitError(f"unknown leaderboard format {fmt!r}; use one of {', '.join(FORMATS)}")


def check_format(path: Path, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` if given (checked), else from the suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise SnnkitError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SnnkitError(
            f"cannot tell the format of {path}; use a suffix ({', '.join(_SUFFIXES)}) or --format"
        )
    return fmt


def write(board: list[Entry], path: Path, fmt: str | None = None) -> str:
    """Write the leaderboard to ``path`` (format from ``fmt`` or the suffix); returns the format."""
    from snnkit.paths import writable_file

    fmt = check_format(path, fmt)
    writable_file(path, "leaderboard export")
    if not board:
        raise SnnkitError("no completed runs to rank; train some with `snnkit leaderboard run`")
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "png":
        from snnkit.report import write_png

        write_png(board, tmp)
    else:
        tmp.write_text(render(board, fmt))
    tmp.replace(path)  # atomic: never a half-written file
    return fmt
