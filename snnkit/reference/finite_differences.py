"""Central finite differences on the exact simulator, and a screen for non-differentiable draws.

Spike-time losses are differentiable only while the spike pattern is unchanged, so
:func:`central_differences` refuses (NaN + mask) every entry whose perturbation by ``+-h``
changes any spike count, and :func:`critical_points` lists the reasons a random draw sits near
a non-differentiable point (grazing crossings, near misses, near-coincident events, spikes
at the window's end), so that an exact method is never blamed for them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.reference.exact import ExactNeuron, ExactResult, TraceWindow

__all__ = ["FDResult", "central_differences", "critical_points"]


@dataclass
class FDResult:
    """``grads[p]``: central differences shaped like ``params[p]`` (NaN where refused);
    ``refused[p]``: True where a spike count changed at ``+h`` or ``-h``."""

    grads: list[torch.Tensor]
    refused: list[torch.Tensor]


def _scalar(loss: torch.Tensor) -> float:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise SnnkitError(
            f"loss_fn must return a one-element tensor, got {what}; reduce it with .sum()"
        )
    return float(loss.detach())


def central_differences(
    loss_fn: Callable[[], torch.Tensor],
    params: list[torch.Tensor],
    *,
    h: float = 1e-6,
    spike_counts: Callable[[], torch.Tensor],
) -> FDResult:
    """``(L(x + h) - L(x - h)) / (2h)`` for every entry of every tensor in ``params``.

    Each entry is perturbed in place under ``no_grad`` and restored exactly. ``spike_counts``
    is called right after each ``loss_fn()`` call (so it may read state that call left behind);
    an entry whose counts differ from the unperturbed ones at ``+h`` or ``-h`` is refused.
    The divisor is the actually represented step ``(x + h) - (x - h)``.
    """
    if not (isinstance(h, float) and math.isfinite(h) and h > 0):
        raise SnnkitError(f"h must be a positive finite float, got {h!r}")
    grads, refused = [], []
    with torch.no_grad():
        _scalar(loss_fn())
        base = spike_counts().clone()
        for p in params:
            if not isinstance(p, torch.Tensor) or not p.is_floating_point():
                raise SnnkitError(
                    "central_differences perturbs floating tensors in place; every params "
                    f"entry must be one, got {type(p).__name__}"
                )
            grad = torch.full(p.shape, math.nan, dtype=torch.float64)
            mask = torch.zeros(p.shape, dtype=torch.bool)
            for idx in itertools.product(*(range(n) for n in p.shape)):
                x = p[idx].item()
                values, same = [], True
                for x_step in (x + h, x - h):
                    p[idx] = x_step
                    values.append(_scalar(loss_fn()))
                    counts = spike_counts()
                    same = same and counts.shape == base.shape and bool((counts == base).all())
                p[idx] = x
                step = (x + h) - (x - h)
                if same:
                    grad[idx] = (values[0] - values[1]) / step
                else:
                    mask[idx] = True
            grads.append(grad)
            refused.append(mask)
    return FDResult(grads, refused)


def _peak_below(
    neuron: ExactNeuron, window: TraceWindow, following: TraceWindow | None, n: int
) -> float | None:
    """Largest local maximum of neuron ``n``'s V on ``window`` (interior or at its end)."""
    kernel = neuron.kernel
    v0, i0, length = window.v0[n], window.i0[n], window.end - window.start
    peaks = []
    s_ext = kernel.extremum(v0, i0)
    if s_ext is not None and 0.0 < s_ext < length:
        peaks.append(kernel.voltage(v0, i0, s_ext))
    if kernel.slope(v0, i0, length) > 0.0:  # rising at the end: a maximum if it falls after
        falls_after = following is None or following.i0[n] - following.v0[n] <= 0.0
        if falls_after:
            peaks.append(kernel.voltage(v0, i0, length))
    return max(peaks, default=None)


def critical_points(
    result: ExactResult,
    inputs: Events,
    neuron: ExactNeuron,
    duration: float,
    *,
    margin: float = 1e-3,
) -> list[str]:
    """Reasons the simulated draw is near a non-differentiable point; empty = fine.

    Per layer, sample and neuron it flags: a spike with ``dV/dt = (I - theta)/tau_m < margin``
    (grazing); a spike within ``margin`` ms of ``duration``; an arrival (from the layer below or,
    in a recurrent layer, from another neuron of the layer) within ``margin`` ms of the
    neuron's own spike; a local maximum of V within ``margin * theta`` below theta (near miss).
    """
    theta, tau_m = neuron.threshold, neuron.tau_mem
    reasons: list[str] = []
    pre = inputs.times.detach().to(torch.float64)
    for layer, (events, currents, trace) in enumerate(
        zip(result.spikes, result.currents_at_spikes, result.traces, strict=True)
    ):
        times = events.times.detach()
        currents = currents.detach()
        B, N, K = times.shape
        for b in range(B):
            arrivals = pre[b][torch.isfinite(pre[b])].tolist()
            for n in range(N):
                own = times[b, n][torch.isfinite(times[b, n])].tolist()
                others = list(arrivals)
                if trace.recurrent:
                    rest = torch.cat([times[b, :n], times[b, n + 1 :]]).reshape(-1)
                    others += rest[torch.isfinite(rest)].tolist()
                where = f"layer {layer}, sample {b}, neuron {n}"
                for k, t in enumerate(own):
                    slope = (float(currents[b, n, k]) - theta) / tau_m
                    if slope < margin:
                        reasons.append(
                            f"{where}: spike at t={t:.6g} crosses with dV/dt={slope:.3g} < "
                            f"{margin} (grazing)"
                        )
                    if duration - t < margin:
                        reasons.append(
                            f"{where}: spike at t={t:.6g} within {margin} of duration={duration}"
                        )
                    close = [a for a in others if abs(a - t) < margin]
                    if close:
                        reasons.append(
                            f"{where}: spike at t={t:.6g} near-coincident with an arrival at "
                            f"t={close[0]:.6g}"
                        )
            windows = trace.windows[b]
            for w_index, window in enumerate(windows):
                following = windows[w_index + 1] if w_index + 1 < len(windows) else None
                for n in range(N):
                    if n == window.spiker:
                        continue
                    peak = _peak_below(neuron, window, following, n)
                    if peak is not None and theta * (1.0 - margin) <= peak < theta:
                        reasons.append(
                            f"layer {layer}, sample {b}, neuron {n}: V peaks at {peak:.9g} in "
                            f"[{window.start:.6g}, {window.end:.6g}], within {margin} (relative) "
                            f"below threshold {theta} (near miss)"
                        )
        pre = times
    return reasons
