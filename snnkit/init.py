"""Weight initialisation for continuous-time (event) networks.

Event networks learn only from spikes: a silent layer has a zero gradient. Weights are
therefore drawn in units of the threshold and of the PSP a unit weight produces, so one
setting works whatever the time constants:

    W = (mean + std * N(0, 1)) * theta / (psp_peak * sqrt(fan_in))

where ``psp_peak`` is the peak membrane after a unit current jump from rest
(:meth:`snnkit.reference.exact.Kernel.psp_peak`). ``mean = 1`` means ``sqrt(fan_in)``
coincident inputs just reach threshold.
"""

from __future__ import annotations

import math

import torch

from snnkit.errors import check
from snnkit.neurons import LIF
from snnkit.reference.exact import Kernel

__all__ = ["event_weights"]


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
    peak = Kernel(neuron.tau_mem, neuron.tau_syn).psp_peak()
    unit = neuron.threshold / (peak * math.sqrt(in_features))
    return (mean + std * torch.randn(out_features, in_features)) * unit
