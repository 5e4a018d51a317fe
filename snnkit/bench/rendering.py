"""Reporting benchmark results: a rich table, the machine they were taken on, JSON."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from dataclasses import asdict
from typing import Any

import torch

from snnkit.bench.engine import BenchResult
from snnkit.errors import SnnkitError

JSON_SCHEMA = "snnkit-bench/1"


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def results_table(results: list[BenchResult], title: str | None = None):
    """A rich table: times (ms), speed-up and saved-memory ratio vs BPTT, skip reasons."""
    from rich.table import Table

    table = Table(
        title=title or "snnkit bench",
        caption="times: median ms; × bptt = bptt time / method time; "
        "saved ÷ = bptt saved bytes / method saved bytes",
    )
    for col in ("method", "part", "T", "B", "N"):
        table.add_column(col, justify="left" if col in ("method", "part") else "right")
    for col in ("fwd ms", "bwd ms", "total ms", "× bptt", "saved MB", "saved ÷"):
        table.add_column(col, justify="right")
    show_peak = any(r.peak_mb is not None for r in results)
    if show_peak:
        table.add_column("peak MB", justify="right")
    table.add_column("spikes", justify="right")
    table.add_column("note")
    for r in results:
        part = f"{r.part} (trained τ,θ)" if r.trainable else r.part
        row = [r.method, part, str(r.steps), str(r.batch), str(r.neurons)]
        row += [
            _fmt(r.forward_ms),
            _fmt(r.backward_ms),
            _fmt(r.total_ms),
            _fmt(r.ratio_vs_bptt, ".2f", "×"),
            _fmt(r.saved_mb, ".2f"),
            _fmt(r.saved_ratio_vs_bptt, ".2f", "×"),
        ]
        if show_peak:
            row.append(_fmt(r.peak_mb, ".1f"))
        row.append(_fmt(r.spike_rate, ".3f"))
        row.append(f"skipped: {r.skipped}" if r.skipped else "")
        table.add_row(*row, style="dim" if r.skipped else None)
    return table


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where the numbers were taken: CPU count, threads, torch version, date, GPU name."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    try:
        info["load_average"] = list(os.getloadavg())
    except OSError:
        pass
    if device.type == "cuda" and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def to_json(results: list[BenchResult], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-serialisable dict: schema tag, optional ``meta`` and one dict per result."""
    out: dict[str, Any] = {"schema": JSON_SCHEMA}
    if meta is not None:
        out["meta"] = meta
    out["results"] = [asdict(r) for r in results]
    return out


def from_json(data: dict[str, Any]) -> list[BenchResult]:
    """The results of :func:`to_json` back as :class:`BenchResult` objects."""
    if data.get("schema") != JSON_SCHEMA:
        raise SnnkitError(f"not a snnkit benchmark file (schema {data.get('schema')!r})")
    return [BenchResult(**row) for row in data["results"]]
