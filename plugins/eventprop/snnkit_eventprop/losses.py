"""The EventProp losses (W&P 2021; loss shaping, Nowotny, Turner & Knight), registered by name.

Readout losses (``input = "readout"``) take an event network's LI readout (the
``EventOutput.readout`` object: ``mean()``, ``integral_exp()``, ``maximum()``,
``voltage(t)``, ``duration``) and apply cross-entropy to a per-class statistic ``x [B, C]``:

- ``sum``: ``x = (1/T) int_0^T V dt``;  ``sum_exp``: ``x = (1/T) int_0^T exp(-t/T) V dt``;
- ``max``: ``x = max_t V``;
- ``avg_xentropy``: ``(1/T) int_0^T -log softmax(V(t))_label dt``, the integral taken by the
  midpoint rule on ``points`` equal steps (its gradient is exact for that quadrature).

The spike-time losses of the same papers (``first_spike``, ``first_spike_exp``) are
general and live in the core (:mod:`snnkit.losses`), usable by every event method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from snnkit.errors import SnnkitError
from snnkit.losses import Loss

__all__ = [
    "LOSSES",
    "AvgCrossEntropy",
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


LOSSES = (SumLoss(), SumExpLoss(), MaxLoss(), AvgCrossEntropy())
