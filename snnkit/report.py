"""The leaderboard as a report: per task a ranked table, accuracy against time per epoch
(Pareto plot) and learning curves, as one self-contained HTML page or one PNG.

Plots are matplotlib figures (the ``plot`` extra, already the PNG export's), embedded in the
page as inline SVG: vector text that stays sharp and searchable, no script, nothing fetched
when the page is viewed, and the same drawing code for the HTML page and the PNG.

- **Pareto plot**: mean test accuracy (error bar: std over seeds) against the median process
  CPU seconds per epoch, or wall-clock seconds where a run did not record CPU time (log axis:
  methods differ by orders of magnitude); the entries no other entry
  beats on both are joined (the Pareto front). Points are numbered by rank; the legend
  gives the values and the number of seeds, so nothing overlaps however many entries.
- **Learning curves**: validation accuracy per epoch, mean over seeds and the band from
  the worst to the best seed.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snnkit.errors import SnnkitError
from snnkit.leaderboard import HEADERS, Entry, cells

COLUMNS = 2  # per task: Pareto plot, learning curves


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SnnkitError("leaderboard plots need matplotlib: pip install 'snnkit[plot]'") from None
    return plt


def tasks(board: list[Entry]) -> list[str]:
    return sorted({e.dataset for e in board})


def _name(e: Entry) -> str:
    """The legend's name: method and rank (settings are in the table, never in a legend)."""
    return e.method


def _colour(k: int):
    return _pyplot().get_cmap("tab10" if k < 10 else "tab20")(k % 20)


def time_axis(entries: list[Entry]) -> tuple[str, Callable[[Entry], float | None]]:
    """What the x axis shows: CPU seconds per epoch when every entry recorded them (they
    hardly depend on the machine's load), else wall-clock seconds."""
    timed = [e for e in entries if e.accuracy_mean is not None and e.seconds_per_epoch]
    if timed and all(e.cpu_seconds_per_epoch for e in timed):
        return "CPU seconds per epoch", lambda e: e.cpu_seconds_per_epoch
    return "seconds per epoch", lambda e: e.seconds_per_epoch


def pareto_front(entries: list[Entry]) -> list[Entry]:
    """The entries no other entry beats on both accuracy (higher) and time (lower), by time
    (the time of :func:`time_axis`)."""
    _, time = time_axis(entries)
    points = [e for e in entries if e.accuracy_mean is not None and time(e)]
    front = [
        e
        for e in points
        if not any(
            o.accuracy_mean >= e.accuracy_mean
            and time(o) <= time(e)
            and (o.accuracy_mean, time(o)) != (e.accuracy_mean, time(e))
            for o in points
        )
    ]
    return sorted(front, key=time)


def draw_pareto(ax, entries: list[Entry]) -> None:
    """Accuracy (mean ± std over seeds) against median (CPU) seconds per epoch, one entry a
    point."""
    what, time = time_axis(entries)
    shown = [e for e in entries if e.accuracy_mean is not None and time(e)]
    for k, e in enumerate(shown):
        acc, std = 100 * e.accuracy_mean, 100 * (e.accuracy_std or 0.0)
        ax.errorbar(
            time(e),
            acc,
            yerr=std if e.accuracy_std is not None else None,
            fmt="o",
            color=_colour(k),
            capsize=3,
            label=f"{e.rank}. {_name(e)}: {acc:.1f}"
            + (f" ± {std:.1f}" if e.accuracy_std is not None else "")
            + f" %, {time(e):.2g} s, n={len(e.seeds)}",
        )
        ax.annotate(str(e.rank), (time(e), acc), xytext=(4, 4), fontsize=8,
                    textcoords="offset points")  # fmt: skip
    front = pareto_front(shown)
    if len(front) > 1:
        ax.plot(
            [time(e) for e in front],
            [100 * e.accuracy_mean for e in front],
            color="0.6",
            lw=1,
            ls="--",
            zorder=0,
            label="Pareto front",
        )
    ax.set_xscale("log")
    plain = _pyplot().FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"{what} (median over epochs and seeds, log scale)")
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    if shown:
        low = min(100 * (e.accuracy_mean - (e.accuracy_std or 0.0)) for e in shown)
        # a scatter plot: the axis covers the data (with room) up to 100 %, never cut above
        ax.set_ylim(max(0.0, math.floor(low - 2)), 100.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("accuracy vs time per epoch")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False)


def draw_curves(ax, entries: list[Entry]) -> None:
    """Validation accuracy per epoch: mean over seeds, band from the worst to the best seed."""
    drawn = 0
    for k, e in enumerate(
        x for x in entries if x.accuracy_mean is not None and x.seconds_per_epoch
    ):
        curve = e.curve("validation_accuracy")
        if not curve:
            continue
        epochs = [c[0] for c in curve]
        ax.plot(epochs, [100 * c[1] for c in curve], color=_colour(k), lw=1.2, marker=".",
                label=f"{e.rank}. {_name(e)} (n={len(e.seeds)})")  # fmt: skip
        if len(e.seeds) > 1:
            ax.fill_between(epochs, [100 * c[2] for c in curve], [100 * c[3] for c in curve],
                            color=_colour(k), alpha=0.15, lw=0)  # fmt: skip
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no epoch rows stored", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(top=100.5)
    ax.grid(True, alpha=0.3)
    ax.set_title("learning curves (mean; band: worst to best seed)")
    if drawn:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False)


def _figure(entries_per_task: list[tuple[str, list[Entry]]]):
    """One row of (Pareto, curves) per task; the height grows with the legends."""
    plt = _pyplot()
    heights = [4.0 + 0.16 * len(entries) for _, entries in entries_per_task]
    fig, axes = plt.subplots(
        len(entries_per_task),
        COLUMNS,
        figsize=(13, sum(heights)),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": heights},
    )
    for row, (task, entries) in zip(axes, entries_per_task, strict=True):
        draw_pareto(row[0], entries)
        draw_curves(row[1], entries)
        for ax in row:
            ax.set_title(f"{task}: {ax.get_title()}", fontsize=10)
    return fig


def write_png(board: list[Entry], path: Path) -> None:
    """Every task's Pareto plot and learning curves, one row per task, as a PNG."""
    fig = _figure([(t, [e for e in board if e.dataset == t]) for t in tasks(board)])
    fig.savefig(path, dpi=110, format="png")
    _pyplot().close(fig)


def _svg(entries: list[Entry], task: str) -> str:
    fig = _figure([(task, entries)])
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    _pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; white-space: nowrap; }
figure { margin: 0; }
svg { max-width: 100%; height: auto; }
.note { color: #555; font-size: 12px; }
"""
_NUMERIC = {
    "#", "test accuracy", "at best val.", "s / epoch", "CPU s / epoch", "peak MB", "spikes", "dead"
}  # fmt: skip


def _table(entries: list[Entry]) -> str:
    # the settings as a diff against the recipe, not against the other entries
    headers = [h for h in HEADERS if h not in ("task", "setting")] + ["vs the recipe"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = []
    for e in entries:
        values = [c for h, c in zip(HEADERS, cells(e), strict=True) if h not in ("task", "setting")]
        values.append(e.recipe_diff or "the recipe")
        tds = "".join(
            f'<td class="num">{html.escape(v)}</td>'
            if h in _NUMERIC
            else f"<td>{html.escape(v)}</td>"
            for h, v in zip(headers, values, strict=True)
        )
        rows.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_report(
    board: list[Entry],
    *,
    title: str = "snnkit leaderboard",
    recipes: dict[str, str] | None = None,
    notes: list[str] = (),
) -> str:
    """The whole page: per task, its recipe, the ranked table and the two plots."""
    sections = []
    for task in tasks(board):
        entries = [e for e in board if e.dataset == task]
        recipe = (recipes or {}).get(task)
        sections.append(
            f"<section><h2>{html.escape(task)}</h2>"
            + (f'<p class="note">recipe: {html.escape(recipe)}</p>' if recipe else "")
            + _table(entries)
            + f"<figure>{_svg(entries, task)}</figure></section>"
        )
    legend = (
        "test accuracy: final epoch, mean ± sample std over seeds (a seed trained twice is "
        "averaged first; one seed has no spread, shown —); at best val.: test accuracy at each "
        "seed's best validation epoch; s / epoch: median over epochs and seeds; peak MB: the "
        "largest peak memory of any run; grad. error: worst relative gradient error against "
        "the method's oracle over the conformance cases in float64 (passed/checked), from a "
        "stored `snnkit conformance --json` run; spikes, dead: hidden layers' spike rate per "
        "neuron and step, and fraction of neurons silent for a whole epoch, at the last epoch; "
        "vs the recipe: the options this entry changed from the task's recipe."
    )
    extra = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="note">{html.escape(legend)}</p>{extra}'
        + "".join(sections)
        + "</body></html>\n"
    )


def annotate(
    board: list[Entry],
    recipe_of: Callable[[str], dict[str, Any] | None],
    is_events: Callable[[str], bool],
    conformance: dict[str, str] | None = None,
) -> None:
    """Fill each entry's recipe diff (``recipe_of(task)``) and gradient error."""
    from snnkit.leaderboard import recipe_diff

    for e in board:
        recipe = recipe_of(e.dataset)
        if recipe is not None:
            e.recipe_diff = recipe_diff(e.options, recipe, events=is_events(e.method))
        if conformance is not None:
            e.conformance = conformance.get(e.method, "not checked")
