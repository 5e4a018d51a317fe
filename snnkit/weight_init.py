"""Weight initialisation for continuous-time (event) networks.

Event networks learn only from spikes: a silent layer has a zero gradient. Weights are
therefore drawn in units of the threshold and of the PSP a unit weight produces, so one
setting works whatever the time constants:

    W = (mean + std * N(0, 1)) * theta / (psp_peak * sqrt(fan_in))

where ``psp_peak`` is the peak membrane after a unit current jump from rest
(:meth:`snnkit.continuous.LIFKernel.psp_peak`). ``mean = 1`` means ``sqrt(fan_in)``
coincident inputs just reach threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from snnkit.continuous import LIFKernel
from snnkit.errors import SnnkitError, check
from snnkit.neurons import LIF

__all__ = ["event_weights", "input_weight", "scale_to_rate"]


def event_weights(
    out_features: int, in_features: int, neuron: LIF, mean: float = 0.5, std: float = 0.5
) -> torch.Tensor:
    """A ``[out, in]`` weight matrix for ``neuron`` (see the module docstring)."""
    for name, value in (("weight_mean", mean), ("weight_std", std)):
        check(
            isinstance(value, int | float) and math.isfinite(value),
            f"{name} must be a finite number, got {value!r}",
        )
    check(std >= 0, f"weight_std must be >= 0, got {std}")
    peak = LIFKernel(neuron.tau_mem, neuron.tau_syn).psp_peak()
    unit = neuron.threshold / (peak * math.sqrt(in_features))
    return (mean + std * torch.randn(out_features, in_features)) * unit


def input_weight(model: torch.nn.Module) -> torch.nn.Parameter | None:
    """The weight matrix from the inputs into the first layer: the first parameter named
    ``*weight`` with two or more dimensions that is not a recurrent weight."""
    for name, p in model.named_parameters():
        if name.endswith("weight") and "recurrent" not in name and p.dim() >= 2:
            return p
    return None


def scale_to_rate(
    measure: Callable[[float], float],
    target: float,
    *,
    within: float = 1.5,
    steps: int = 12,
    grow: float = 4.0,
) -> tuple[float, float]:
    """The factor ``f`` on the input weights that makes ``measure(f)`` (a firing rate) land
    within ``[target / within, target * within]``, and the rate it gave.

    Rates grow with ``f``: ``f`` is multiplied or divided by ``grow`` until the target is
    bracketed, then bisected geometrically. ``measure`` raising :class:`SnnkitError` (e.g. a
    neuron over its spike bound) counts as too high. After ``steps`` measurements the factor
    whose rate came closest (in log ratio) is returned.
    """
    check(target > 0 and math.isfinite(target), f"target rate must be > 0, got {target}")
    lo = hi = None
    f, best = 1.0, (math.inf, 1.0, 0.0)
    for _ in range(steps):
        try:
            rate = float(measure(f))
        except SnnkitError:
            rate = math.inf
        if 0 < rate < math.inf:
            best = min(best, (abs(math.log(rate / target)), f, rate))
        if target / within <= rate <= target * within:
            return f, rate
        if rate < target:
            lo = f
        else:
            hi = f
        if hi is None:
            f *= grow
        elif lo is None:
            f /= grow
        else:
            f = math.sqrt(lo * hi)
    return best[1], best[2]
