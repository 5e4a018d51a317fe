"""The EventProp losses (W&P 2021; loss shaping, Nowotny, Turner & Knight), registered by name.

Readout losses (``input = "readout"``) take an event network's LI readout (the
``EventOutput.readout`` object: ``mean()``, ``integral_exp()``, ``maximum()``,
``voltage(t)``, ``duration``) and apply cross-entropy to a per-class statistic ``x [B, C]``:

- ``sum``: ``x = (1/T) int_0^T V dt``;  ``sum_exp``: ``x = (1/T) int_0^T exp(-t/T) V dt``;
- ``max``: ``x = max_t V``;
- ``avg_xentropy``: ``(1/T) int_0^T -log softmax(V(t))_label dt``, the integral taken by the
  midpoint rule on ``points`` equal steps (its gradient is exact for that quadrature).

Spike-time losses (``input = "spike_times"``) take the output layer's spike times
``[B, C, K]`` and use each output's first spike ``t``:

- ``first_spike``: ``-log softmax(-t/tau0)_label + alpha / (1.01 T - t_label)``;
- ``first_spike_exp``: ``-log softmax(-t/tau0)_label + alpha (exp(t_label/tau1) - 1)``.

A silent output counts as firing at ``T`` (a constant: no gradient flows through it).
``T`` is the ``duration`` attribute that eventprop networks attach to their spike tensors,
or the loss's own ``duration`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from snnkit.errors import SnnkitError
from snnkit.losses import Loss, first_spike

__all__ = [
    "LOSSES",
    "AvgCrossEntropy",
    "FirstSpike",
    "FirstSpikeExp",
    "MaxLoss",
    "SumExpLoss",
    "SumLoss",
]


class _ReadoutLoss(Loss):
    input: ClassVar[str] = "readout"

    def statistic(self, readout) -> torch.Tensor:
        raise NotImplementedError

    def _check(self, output, target) -> None:
        if not all(hasattr(output, m) for m in ("mean", "integral_exp", "maximum", "voltage")):
            raise SnnkitError(
                f"loss '{self.name}' reads an event network's LI readout (EventOutput.readout), "
                f"got {type(output).__name__}; build the network with an LI readout"
            )
        batch = output.jumps.shape[0]
        if target.shape != (batch,):
            raise SnnkitError(
                f"loss '{self.name}': target must be [B]={batch} class indices, got {tuple(target.shape)}"
            )

    def loss(self, output, target):
        return F.cross_entropy(self.statistic(output), target)

    def predict(self, output):
        return self.statistic(output).argmax(-1)


class SumLoss(_ReadoutLoss):
    name = "sum"
    summary = "cross-entropy of (1/T) int V dt of the LI readout (EventProp)"

    def statistic(self, readout):
        return readout.mean()


class SumExpLoss(_ReadoutLoss):
    name = "sum_exp"
    summary = "cross-entropy of (1/T) int exp(-t/T) V dt of the LI readout (loss shaping)"

    def statistic(self, readout):
        return readout.integral_exp() / readout.duration


class MaxLoss(_ReadoutLoss):
    name = "max"
    summary = "cross-entropy of max_t V of the LI readout (EventProp)"

    def statistic(self, readout):
        return readout.maximum()


@dataclass(frozen=True)
class AvgCrossEntropy(_ReadoutLoss):
    """``(1/T) int -log softmax(V(t))_label dt`` by the midpoint rule on ``points`` steps."""

    name: ClassVar[str] = "avg_xentropy"
    summary: ClassVar[str] = "time-averaged cross-entropy of the LI readout voltage (loss shaping)"
    points: int = 200

    def _log_probs(self, readout) -> torch.Tensor:
        T = readout.duration
        t = (torch.arange(self.points, dtype=torch.float64) + 0.5) * (T / self.points)
        return F.log_softmax(readout.voltage(t), dim=1)  # [B, C, M]

    def loss(self, output, target):
        logp = self._log_probs(output)
        return -logp.gather(1, target[:, None, None].expand(-1, 1, logp.shape[2])).mean()

    def predict(self, output):
        return self._log_probs(output).sum(-1).argmax(-1)


@dataclass(frozen=True)
class _FirstSpikeLoss(Loss):
    input: ClassVar[str] = "spike_times"
    tau0: float = 0.5
    alpha: float = 3e-3
    duration: float | None = None

    def _times(self, output: torch.Tensor) -> tuple[torch.Tensor, float]:
        T = getattr(output, "duration", None) or self.duration
        if T is None:
            raise SnnkitError(
                f"loss '{self.name}' needs the simulation window T: pass spike times from an "
                f"eventprop network (they carry .duration) or set the loss's duration="
            )
        t = first_spike(output)
        return torch.where(torch.isfinite(t), t, torch.full_like(t, T)), float(T)

    def penalty(self, t_label: torch.Tensor, T: float) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, output, target):
        t, T = self._times(output)
        ce = F.cross_entropy(-t / self.tau0, target)
        t_label = t.gather(1, target[:, None])[:, 0]
        return ce + self.alpha * self.penalty(t_label, T).mean()

    def predict(self, output):
        t, _ = self._times(output)
        return t.argmin(-1)


@dataclass(frozen=True)
class FirstSpike(_FirstSpikeLoss):
    name: ClassVar[str] = "first_spike"
    summary: ClassVar[str] = "TTFS cross-entropy + alpha/(1.01T - t_label) (EventProp)"

    def penalty(self, t_label, T):
        return 1.0 / (1.01 * T - t_label)


@dataclass(frozen=True)
class FirstSpikeExp(_FirstSpikeLoss):
    name: ClassVar[str] = "first_spike_exp"
    summary: ClassVar[str] = "TTFS cross-entropy + alpha (exp(t_label/tau1) - 1) (W&P Yin-Yang)"
    tau1: float = 6.4

    def penalty(self, t_label, T):
        return torch.expm1(t_label / self.tau1)


LOSSES = (SumLoss(), SumExpLoss(), MaxLoss(), AvgCrossEntropy(), FirstSpike(), FirstSpikeExp())
