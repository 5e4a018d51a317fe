"""Convolutional SNNs trained through the Python API: neuron modules of every raster method
inside a plain ``torch.nn.Sequential``, and the runnable example ``examples/conv_nmnist.py``
(on synthetic data and on N-MNIST files read by tonic)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from snnkit import LIF, get_registry
from snnkit.nn import Readout, TimeDistributed, reset_state

REPO = Path(__file__).resolve().parents[1]
METHODS = ("exodus", "bptt", "bptt-detached-reset", "slayer", "rouser")


def _task(batch: int, steps: int, generator: torch.Generator):
    """Two classes: events in the top or the bottom half of a 2x8x8 sensor."""
    y = torch.randint(2, (batch,), generator=generator)
    rate = torch.full((batch, 2, 8, 8), 0.02)
    for b, c in enumerate(y.tolist()):
        rate[b, :, 4 * c : 4 * c + 4] = 0.5
    return (torch.rand(steps, *rate.shape, generator=generator) < rate).float(), y


def _model(method_name: str) -> nn.Module:
    method = get_registry().gradient(method_name)
    lif = LIF(tau_mem=20.0, threshold=0.5)
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)),
        method.neuron(lif, train_threshold=True, sharing="channel"),  # shape on first call
        TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Flatten()),
        Readout(4 * 4 * 4, 2),
    )


@pytest.mark.parametrize("name", METHODS)
def test_conv_model_trains_a_few_steps(name):
    """The loss falls over a few Adam steps and every gradient is finite, thresholds too."""
    if name not in get_registry().names("gradient"):
        pytest.skip(f"{name} is not installed")
    torch.manual_seed(0)
    net = _model(name)
    x, y = _task(16, 20, torch.Generator().manual_seed(0))
    reset_state(net)
    net(x)  # the neuron module takes its shape (and creates its thresholds) here
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        reset_state(net)
        loss = nn.functional.cross_entropy(net(x).mean(0), y)
        optimiser.zero_grad()
        loss.backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert net[0].module.weight.grad.abs().sum() > 0  # through the neurons
        optimiser.step()
        losses.append(loss.item())
    threshold = net[1].params.threshold
    assert threshold.shape == (4, 1, 1) and threshold.grad.abs().sum() > 0
    assert losses[-1] < 0.7 * losses[0], losses


def _example():
    spec = importlib.util.spec_from_file_location("conv_nmnist", REPO / "examples/conv_nmnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conv_example_learns_on_synthetic_data(capsys):
    losses = _example().main(["--steps", "8", "--batch", "8", "--bins", "12", "--lr", "3e-3"])
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < losses[0], losses
    assert capsys.readouterr().out.count("loss") == 8


def test_conv_example_reads_nmnist_files(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    from fixtures.neuromorphic_files import block_network, make_nmnist

    block_network(monkeypatch)
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    make_nmnist(tmp_path / "data", {"train": 3, "test": 1})
    args = ["--data-dir", str(tmp_path / "data"), "--steps", "2", "--batch", "4"]
    losses = _example().main(args)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
