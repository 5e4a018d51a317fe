"""Vectorised threshold crossings of the current-based LIF between two events.

Between events each neuron follows the closed form of :class:`snnkit.continuous.LIFKernel`
(``V(s)`` is a sum of two exponentials, so it has at most one extremum). For tensors of
states ``(v0, i0)`` and windows ``w`` this finds, elementwise, the first ``s`` in ``(0, w]``
with ``V(s) = theta`` reached from below: split at the extremum, pick the first monotone
piece whose ends bracket ``theta``, then a safeguarded Newton iteration on that bracket,
run only on the elements that have a crossing. ``s = 0`` where ``v0 >= theta`` already.
"""

from __future__ import annotations

import math

import torch

from snnkit.continuous import LIFKernel

__all__ = ["extremum", "first_crossing"]

MAX_ITERATIONS = 100


def extremum(kernel: LIFKernel, v0: torch.Tensor, i0: torch.Tensor) -> torch.Tensor:
    """The ``s`` where ``dV/ds = 0`` (any sign), NaN where V is monotone for all ``s``."""
    with torch.no_grad():
        if kernel.equal_taus:
            s = kernel.tau_mem * (1.0 - v0 / i0)
        else:
            k = kernel.kappa
            ratio = (v0 - i0 * k) / (i0 * (1.0 - k))
            s = torch.log(ratio) / (1.0 / kernel.tau_mem - 1.0 / kernel.tau_syn)
        return torch.where(torch.isfinite(s), s, torch.full_like(s, math.nan))


def first_crossing(
    kernel: LIFKernel, v0: torch.Tensor, i0: torch.Tensor, theta: float, window: torch.Tensor
) -> torch.Tensor:
    """First crossing time ``s`` in ``(0, window]`` per element (``inf`` where none); detached."""
    with torch.no_grad():
        f0 = v0 - theta
        s_ext = extremum(kernel, v0, i0)
        inside = (s_ext > 0) & (s_ext < window)
        mid = torch.where(inside, s_ext, window)
        f_mid = kernel.voltage(v0, i0, mid) - theta
        f_end = kernel.voltage(v0, i0, window) - theta
        first = f_mid >= 0
        second = inside & ~first & (f_end >= 0)
        found = (first | second) & (f0 < 0)
        out = torch.full_like(v0, math.inf)
        out = torch.where(f0 >= 0, torch.zeros_like(out), out)
        idx = found.nonzero(as_tuple=True)
        if idx[0].numel() == 0:
            return out
        lo = torch.where(second, mid, torch.zeros_like(mid))[idx]
        hi = torch.where(first, mid, window)[idx]
        f_lo = torch.where(second, f_mid, f0)[idx]
        f_hi = torch.where(first, f_mid, f_end)[idx]
        out[idx] = _solve(kernel, v0[idx], i0[idx], theta, lo, hi, f_lo, f_hi)
        return out


def _solve(kernel, v0, i0, theta, lo, hi, f_lo, f_hi) -> torch.Tensor:
    """Safeguarded Newton on increasing brackets ``f(lo) < 0 <= f(hi)``, to a few ulp."""
    eps = torch.finfo(v0.dtype).eps
    x = lo + (hi - lo) * (-f_lo) / (f_hi - f_lo)
    x = torch.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    x = torch.where(f_hi == 0, hi, x)
    active = f_hi != 0
    for _ in range(MAX_ITERATIONS):
        fx = kernel.voltage(v0, i0, x) - theta
        below = fx < 0
        lo = torch.where(below & active, x, lo)
        hi = torch.where(~below & active, x, hi)
        d = kernel.slope(v0, i0, x)
        nx = x - fx / d
        ok = (d > 0) & (nx >= lo) & (nx <= hi)
        nx = torch.where(ok, nx, 0.5 * (lo + hi))
        done = (fx == 0) | ((nx - x).abs() <= 4 * eps * x.abs()) | (hi - lo <= 4 * eps * hi)
        x = torch.where(active & (fx != 0), nx, x)
        active = active & ~done
        if not bool(active.any()):
            break
    return x
