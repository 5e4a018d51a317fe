"""Losses: statistics, predictions and shape checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.losses import (
    FirstSpike,
    FirstSpikeCrossEntropy,
    FirstSpikeExp,
    LastCrossEntropy,
    MaxCrossEntropy,
    PerStepCrossEntropy,
    SpikeCountMSE,
    SumCrossEntropy,
    SumExpCrossEntropy,
)

torch.manual_seed(0)
TRACE = torch.randn(7, 4, 3, dtype=torch.float64)
TARGET = torch.tensor([0, 2, 1, 2])


def _ce(logits):
    return -sum(
        math.log(math.exp(logits[b][TARGET[b]]) / sum(math.exp(x) for x in logits[b]))
        for b in range(len(TARGET))
    ) / len(TARGET)


@pytest.mark.parametrize(
    "loss,stat",
    [
        (
            MaxCrossEntropy(),
            lambda tr: [[max(tr[t][b][c] for t in range(7)) for c in range(3)] for b in range(4)],
        ),
        (
            SumCrossEntropy(),
            lambda tr: [
                [sum(tr[t][b][c] for t in range(7)) / 7 for c in range(3)] for b in range(4)
            ],
        ),
        (
            SumExpCrossEntropy(),
            lambda tr: [
                [sum(math.exp(-t / 7) * tr[t][b][c] for t in range(7)) / 7 for c in range(3)]
                for b in range(4)
            ],
        ),
        (LastCrossEntropy(), lambda tr: [[tr[6][b][c] for c in range(3)] for b in range(4)]),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_trace_losses(loss, stat):
    logits = stat(TRACE.tolist())
    assert loss(TRACE, TARGET).item() == pytest.approx(_ce(logits), rel=1e-12)
    want = torch.tensor([max(range(3), key=lambda c: row[c]) for row in logits])
    assert torch.equal(loss.predict(TRACE), want)


def test_per_step_cross_entropy_averages_over_time():
    want = sum(F.cross_entropy(TRACE[t], TARGET).item() for t in range(7)) / 7
    assert PerStepCrossEntropy()(TRACE, TARGET).item() == pytest.approx(want, rel=1e-12)


def test_spike_count_mse():
    spikes = torch.zeros(10, 2, 3)
    spikes[:5, 0, 1] = 1.0  # sample 0: class 1 fires at rate 0.5
    loss = SpikeCountMSE(on_rate=0.5, off_rate=0.0)
    assert loss(spikes, torch.tensor([1, 0])).item() == pytest.approx((0.5**2) / 6)
    assert loss.predict(spikes)[0].item() == 1


def test_first_spike_cross_entropy_handles_silent_outputs():
    times = torch.tensor([[1.0, 2.0, math.inf]], requires_grad=True)
    loss = FirstSpikeCrossEntropy(tau0=1.0)(times, torch.tensor([0]))
    assert loss.item() == pytest.approx(
        -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-2))), rel=1e-6
    )
    loss.backward()
    assert torch.isfinite(times.grad).all() and times.grad[0, 0] > 0
    assert FirstSpikeCrossEntropy().predict(times.detach()).item() == 0


def test_shape_errors():
    with pytest.raises(SnnkitError, match=r"\[T, B, C\]"):
        MaxCrossEntropy()(torch.zeros(4, 3), TARGET)
    with pytest.raises(SnnkitError, match="target"):
        MaxCrossEntropy()(TRACE, torch.tensor([0, 1]))


@pytest.mark.parametrize("cls", [FirstSpikeExp, FirstSpike])
def test_first_spike_losses_treat_silent_outputs_as_wunderlich_and_pehle(cls):
    """Silent outputs are out of the softmax, a sample whose label output is silent
    contributes nothing, only first spikes matter; prediction counts silence as T."""
    inf = math.inf
    times = torch.tensor(
        [[[3.0, inf], [inf, inf], [5.0, 6.0]], [[2.0, inf], [inf, inf], [4.0, inf]]],
        dtype=torch.float64,
        requires_grad=True,
    )
    target = torch.tensor([0, 1])  # sample 1's label output is silent
    loss = cls()
    with pytest.raises(SnnkitError, match="needs the window T: pass spike times as snnkit.events"):
        loss(times, target)
    value = loss(Events(times, 10.0), target)
    assert value == cls(duration=10.0)(times, target)
    ce = -math.log(math.exp(-3.0 / 0.5) / (math.exp(-3.0 / 0.5) + math.exp(-5.0 / 0.5)))
    penalty = math.expm1(3.0 / 6.4) if cls is FirstSpikeExp else 1 / (1.01 * 10.0 - 3.0)
    assert value.item() == pytest.approx((ce + 3e-3 * penalty) / 2, rel=1e-12)
    (grad,) = torch.autograd.grad(value, times)
    assert grad[1].abs().sum() == 0 and grad[0, 1].abs().sum() == 0
    assert grad[0, 0, 0] > 0 > grad[0, 2, 0]  # descent: the label earlier, the wrong one later
    assert grad[0, :, 1:].abs().sum() == 0
    assert loss.predict(Events(times, 10.0)).tolist() == [0, 0]
    everyone_silent = torch.full((1, 3, 1), inf, dtype=torch.float64, requires_grad=True)
    assert loss(Events(everyone_silent, 10.0), torch.tensor([2])).item() == 0.0
