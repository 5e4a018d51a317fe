"""EEST's spike-time losses, registered by name (the first-spike cross-entropies
``ttfs_ce``, ``first_spike`` and ``first_spike_exp`` are the core's).

- ``spike_time_mse`` (exact): mean squared error of each output's first spike time
  against a target time, ``t_on`` for the label and ``t_off`` for the others (ms, or, by
  default, fractions of the window ``T``); a silent output counts as firing at ``T``.
- ``eest_spike_count`` (declared pseudo-gradient, the paper's multi-spike loss): squared
  error of each output's spike count against ``n_on`` / ``n_off``. A count is piecewise
  constant in the weights (its true gradient is 0 almost everywhere); as in Bacho & Chu
  each spike's time stands in for it, ``d count/d t_k := -1/T``, so that an output that
  should fire more is pushed to fire earlier (more of it fits in the window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.losses import Loss, first_spike, window

__all__ = ["LOSSES", "SpikeCountLoss", "SpikeTimeMSE"]


def _times(output: torch.Tensor | Events) -> torch.Tensor:
    return output.times if isinstance(output, Events) else output


def _targets(target, like, on, off):
    goal = torch.full_like(like, off)
    return goal.scatter(1, target[:, None], on)


@dataclass(frozen=True)
class SpikeTimeMSE(Loss):
    """MSE of first spike times against ``t_on`` (label) / ``t_off`` (others)."""

    name: ClassVar[str] = "spike_time_mse"
    summary: ClassVar[str] = "MSE of first output spike times vs target times (exact gradient)"
    input: ClassVar[str] = "spike_times"
    t_on: float = 0.3  # fractions of T when <= 1, else ms
    t_off: float = 0.9
    duration: float | None = None

    def loss(self, output, target):
        T = window(output, self.duration, self.name)
        first = first_spike(output)
        first = torch.where(torch.isfinite(first), first, torch.full_like(first, T))
        scale = T if max(self.t_on, self.t_off) <= 1 else 1.0
        goal = _targets(target, first, self.t_on * scale, self.t_off * scale)
        return ((first - goal) / T).pow(2).mean()

    def predict(self, output):
        return first_spike(output).argmin(-1)


class _CountSurrogate(torch.autograd.Function):
    """Spike counts ``[B, C]`` whose backward is the declared pseudo-gradient ``-1/T``."""

    @staticmethod
    def forward(ctx, times, duration):
        ctx.finite, ctx.duration = torch.isfinite(times), duration
        return ctx.finite.sum(-1).to(times.dtype)

    @staticmethod
    def backward(ctx, grad):
        pseudo = -ctx.finite.to(grad.dtype) / ctx.duration
        return grad[..., None] * pseudo, None


@dataclass(frozen=True)
class SpikeCountLoss(Loss):
    """Squared error of output spike counts vs ``n_on`` / ``n_off`` (pseudo-gradient)."""

    name: ClassVar[str] = "eest_spike_count"
    summary: ClassVar[str] = (
        "squared error of output spike counts vs target counts (declared pseudo-gradient)"
    )
    input: ClassVar[str] = "spike_times"
    exact: ClassVar[bool] = False
    n_on: float = 4.0
    n_off: float = 0.0
    duration: float | None = None

    def loss(self, output, target):
        T = window(output, self.duration, self.name)
        times = _times(output)
        if times.ndim != 3:
            raise SnnkitError(
                f"loss '{self.name}' needs spike times [B, C, K], got {tuple(times.shape)}"
            )
        counts = _CountSurrogate.apply(times, T)
        goal = _targets(target, counts, self.n_on, self.n_off)
        return (counts - goal).pow(2).sum(-1).mean()

    def predict(self, output):
        times = _times(output)
        counts = torch.isfinite(times).sum(-1).to(times.dtype)
        return (counts - 1e-6 * first_spike(output).nan_to_num(posinf=1e9)).argmax(-1)


LOSSES = (SpikeTimeMSE(), SpikeCountLoss())
