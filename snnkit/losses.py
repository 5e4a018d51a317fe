"""Losses over a network's output, registered by name.

A loss declares which output it reads (``input``): ``"trace"`` (readout voltage
``[T, B, C]``), ``"spikes"`` (output spikes ``[T, B, C]``) or ``"spike_times"``
(output spike times as :class:`snnkit.events.Events` ``[B, C, K]``, which carry the
window, or a tensor ``[B, C]`` or ``[B, C, K]``; ``inf`` = no spike). ``predict`` gives
the class the loss considers chosen, for accuracy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from snnkit.errors import SnnkitError
from snnkit.events import Events

LossInput = Literal["trace", "spikes", "spike_times"]


class Loss(ABC):
    """A classification loss over one kind of network output."""

    name: ClassVar[str]
    summary: ClassVar[str]
    input: ClassVar[LossInput] = "trace"

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(output, target)
        return self.loss(output, target)

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch."""

    @abstractmethod
    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample, ``[B]``."""

    def _check(self, output: torch.Tensor | Events, target: torch.Tensor) -> None:
        if isinstance(output, Events):
            output = output.times
        expected = 2 if self.input == "spike_times" else 3
        if output.ndim not in (expected, expected + (self.input == "spike_times")):
            layout = "[B, C] or [B, C, K]" if self.input == "spike_times" else "[T, B, C]"
            raise SnnkitError(
                f"loss '{self.name}' expects {self.input} of shape {layout}, got {tuple(output.shape)}"
            )
        batch = output.shape[0] if self.input == "spike_times" else output.shape[1]
        if target.shape != (batch,):
            raise SnnkitError(
                f"loss '{self.name}': target must be [B]={batch} class indices, got {tuple(target.shape)}"
            )


class TraceCrossEntropy(Loss):
    """Cross-entropy of a per-class statistic of the readout voltage trace."""

    input = "trace"

    @abstractmethod
    def statistic(self, trace: torch.Tensor) -> torch.Tensor:
        """``[T, B, C] -> [B, C]`` logits."""

    def loss(self, output, target):
        return F.cross_entropy(self.statistic(output), target)

    def predict(self, output):
        return self.statistic(output).argmax(-1)


class MaxCrossEntropy(TraceCrossEntropy):
    name = "ce_max"
    summary = "cross-entropy of max_t V (default for raster networks)"

    def statistic(self, trace):
        return trace.max(dim=0).values


class SumCrossEntropy(TraceCrossEntropy):
    name = "ce_sum"
    summary = "cross-entropy of the time-average (1/T) sum_t V"

    def statistic(self, trace):
        return trace.mean(dim=0)


class SumExpCrossEntropy(TraceCrossEntropy):
    name = "ce_sum_exp"
    summary = "cross-entropy of (1/T) sum_t exp(-t/T) V (loss shaping)"

    def statistic(self, trace):
        steps = trace.shape[0]
        w = torch.exp(-torch.arange(steps, dtype=trace.dtype, device=trace.device) / steps)
        return torch.einsum("t,tbc->bc", w, trace) / steps


class LastCrossEntropy(TraceCrossEntropy):
    name = "ce_last"
    summary = "cross-entropy of the last voltage V_T"

    def statistic(self, trace):
        return trace[-1]


class PerStepCrossEntropy(Loss):
    name = "ce_per_step"
    summary = "cross-entropy at every step, averaged over time; predicts by summed log-probs"
    input = "trace"

    def loss(self, output, target):
        steps, batch, classes = output.shape
        return F.cross_entropy(output.reshape(steps * batch, classes), target.repeat(steps))

    def predict(self, output):
        return F.log_softmax(output, dim=-1).sum(0).argmax(-1)


@dataclass(frozen=True)
class SpikeCountMSE(Loss):
    """MSE between each output's spike rate and a target rate (high for the label)."""

    name: ClassVar[str] = "spike_count_mse"
    summary: ClassVar[str] = "MSE of output spike rates against target rates (on / off)"
    input: ClassVar[LossInput] = "spikes"
    on_rate: float = 0.5
    off_rate: float = 0.02

    def loss(self, output, target):
        rate = output.mean(dim=0)
        goal = torch.full_like(rate, self.off_rate)
        goal.scatter_(1, target[:, None], self.on_rate)
        return F.mse_loss(rate, goal)

    def predict(self, output):
        return output.sum(dim=0).argmax(-1)


@dataclass(frozen=True)
class FirstSpikeCrossEntropy(Loss):
    """Time-to-first-spike cross-entropy: -log softmax(-t/tau0)_label (no-spike -> t = inf)."""

    name: ClassVar[str] = "ttfs_ce"
    summary: ClassVar[str] = "cross-entropy of softmax(-t_first/tau0) over output spike times"
    input: ClassVar[LossInput] = "spike_times"
    tau0: float = 1.0

    def loss(self, output, target):
        first = first_spike(output)
        logits = -first / self.tau0
        finite = torch.isfinite(logits)
        # a silent output contributes exp(-inf) = 0 probability; keep the graph finite
        logits = torch.where(finite, logits, torch.full_like(logits, -1e9))
        return F.cross_entropy(logits, target)

    def predict(self, output):
        return first_spike(output).argmin(-1)


def window(output: torch.Tensor | Events, duration: float | None, loss: str) -> float:
    """The window ``T`` of spike times: an :class:`~snnkit.events.Events`' own, else the
    loss's ``duration`` (one-line error when neither is given)."""
    if isinstance(output, Events):
        return output.duration
    if duration is None:
        raise SnnkitError(
            f"loss '{loss}' needs the window T: pass spike times as snnkit.events.Events "
            "(an event network's output.events()) or set the loss's duration="
        )
    return float(duration)


def first_spike(times: torch.Tensor | Events) -> torch.Tensor:
    """First spike time per neuron, ``[B, C]``, from ``[B, C]``, ``[B, C, K]`` or
    :class:`~snnkit.events.Events` (``inf``: none).

    ``K = 0`` (no neuron spiked in the batch) gives all ``inf``.
    """
    if isinstance(times, Events):
        times = times.times
    if times.ndim == 2:
        return times
    if times.shape[-1] == 0:
        return times.new_full(times.shape[:-1], math.inf)
    return times[..., 0]


@dataclass(frozen=True)
class _FirstSpikeLoss(Loss):
    """TTFS cross-entropy ``-log softmax(-t/tau0)_label`` plus ``alpha`` times a penalty on
    the label's first spike (W&P 2021; loss shaping, Nowotny, Turner & Knight), averaged
    over the batch. As in W&P's code, silent outputs are left out of the softmax and a
    sample whose label output is silent contributes nothing (its loss is not defined: no
    spike time to move). For prediction a silent output counts as firing at ``T``: the
    ``duration`` of the :class:`~snnkit.events.Events` passed, else the loss's."""

    input: ClassVar[LossInput] = "spike_times"
    tau0: float = 0.5
    alpha: float = 3e-3
    duration: float | None = None

    def _times(self, output: torch.Tensor) -> tuple[torch.Tensor, float]:
        T = window(output, self.duration, self.name)
        t = first_spike(output)
        return torch.where(torch.isfinite(t), t, torch.full_like(t, T)), T

    def penalty(self, t_label: torch.Tensor, T: float) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, output, target):
        t, T = self._times(output)
        fires = torch.isfinite(first_spike(output))
        logits = torch.where(fires, -t / self.tau0, torch.full_like(t, -1e9))  # silent: out
        ce = F.cross_entropy(logits, target, reduction="none")
        t_label = t.gather(1, target[:, None])[:, 0]
        per_sample = ce + self.alpha * self.penalty(t_label, T)
        label_fires = fires.gather(1, target[:, None])[:, 0]
        return torch.where(label_fires, per_sample, torch.zeros_like(per_sample)).mean()

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


BUILTIN_LOSSES: tuple[Loss, ...] = (
    MaxCrossEntropy(),
    SumCrossEntropy(),
    SumExpCrossEntropy(),
    LastCrossEntropy(),
    PerStepCrossEntropy(),
    SpikeCountMSE(),
    FirstSpikeCrossEntropy(),
    FirstSpike(),
    FirstSpikeExp(),
)
