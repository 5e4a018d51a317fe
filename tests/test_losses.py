"""Losses: statistics, predictions and shape checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from snnkit.errors import SnnkitError
from snnkit.losses import (
    FirstSpikeCrossEntropy,
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
