"""The event-network base (snnkit.event_nets), the closed-form maths (snnkit.continuous),
and the independence of the exact-events oracle from both: the oracle's forward and
gradient run no function of the code it checks, and the methods none of the oracle's."""

from __future__ import annotations

import collections
import math
import sys

import pytest
import torch

from snnkit import LIF
from snnkit.continuous import LIFKernel, li_readout
from snnkit.event_nets import EventNetwork, event_layers, readout_kernel
from snnkit.events import Events
from snnkit.reference import exact
from snnkit.reference.exact_autograd import ExactAutograd
from snnkit.registry import get_registry

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)
TAUS = [(10.0, 5.0), (5.0, 10.0), (7.0, 7.0), (20.0, 10.0)]


@pytest.mark.parametrize("taus", TAUS)
def test_the_closed_form_equals_the_oracles_copy(taus):
    mine, oracle = LIFKernel(*taus), exact.Kernel(*taus)
    gen = torch.Generator().manual_seed(0)
    v0, i0 = torch.randn(50, generator=gen, dtype=F64), torch.randn(50, generator=gen, dtype=F64)
    s = torch.rand(50, generator=gen, dtype=F64) * 30
    for name in ("voltage", "slope", "integral"):
        assert torch.equal(getattr(mine, name)(v0, i0, s), getattr(oracle, name)(v0, i0, s))
    assert torch.equal(mine.current(i0, s), oracle.current(i0, s))
    assert torch.equal(mine.integral_exp(v0, i0, s, 40.0), oracle.integral_exp(v0, i0, s, 40.0))
    assert mine.psp_peak() == oracle.psp_peak()


def test_the_li_readout_equals_the_oracles():
    torch.manual_seed(1)
    times = (torch.rand(3, 4, 2, dtype=F64) * 30).sort(-1).values
    times[0, 1, 1] = math.inf
    weight = torch.randn(2, 4, dtype=F64)
    kernel = LIFKernel(10.0, 5.0)
    mine = li_readout(times, weight, kernel, 40.0)
    padded = torch.where(torch.isfinite(times), times, 40.0).reshape(3, 8)
    assert torch.equal(mine.times, padded.sort(1).values)  # every row has 8 - 1 spikes
    oracle = exact.LIReadout(mine.times, mine.jumps, exact.Kernel(10.0, 5.0), 40.0)
    for name in ("integral", "integral_exp", "mean", "maximum"):
        assert torch.equal(getattr(mine, name)(), getattr(oracle, name)())
    t = torch.linspace(0, 40, 9, dtype=F64)
    assert torch.equal(mine.voltage(t), oracle.voltage(t))


def test_event_layers_draw_the_contracts_parameters():
    torch.manual_seed(0)
    hidden, output, readout = event_layers("3-5-4-2", NEURON, None, recurrent=True)
    assert not readout.spiking and readout_kernel(readout, NEURON) == LIFKernel(10.0, 5.0)
    assert readout_kernel(NEURON, NEURON) is None
    net = EventNetwork(hidden, output, [], readout_kernel(readout, NEURON))
    assert [n for n, _ in net.named_parameters()] == [
        "layers.0.weight",
        "layers.0.recurrent_weight",
        "layers.1.weight",
        "layers.1.recurrent_weight",
        "output.weight",
    ]
    assert output.recurrent_weight is None and output.weight.shape == (2, 4)


def _functions_run(step) -> set[str]:
    """The snnkit files (and plugin packages) whose Python functions ``step()`` calls."""
    seen: collections.Counter[str] = collections.Counter()

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_code.co_filename
            if "snnkit" in name and "site-packages/torch" not in name:
                seen[name] += 1

    sys.setprofile(profile)
    try:
        step()
    finally:
        sys.setprofile(None)
    return set(seen)


def _forward_backward(net) -> None:
    torch.manual_seed(2)
    times = (torch.rand(2, 3, 2, dtype=F64) * 20).sort(-1).values.requires_grad_()
    out = net(Events(times, 40.0))
    loss = sum(torch.where(torch.isfinite(s), s, 0).sum() for s in out.spikes)
    if out.readout is not None:
        loss = loss + out.readout.mean().sum() + out.readout.maximum().sum()
    loss.backward()
    assert times.grad is not None


@pytest.mark.parametrize("readout", [None, NEURON], ids=["li", "spiking"])
def test_the_oracle_runs_none_of_the_code_it_checks(readout):
    torch.manual_seed(0)
    net = ExactAutograd().network("3-6-2", NEURON, readout=readout, weight_mean=1.0).double()
    files = _functions_run(lambda: _forward_backward(net))
    assert any(f.endswith("reference/exact.py") for f in files)
    shared = [f for f in files if not f.endswith(("reference/exact.py", "exact_autograd.py"))]
    assert all(f.endswith("events.py") and "snnkit/events.py" in f for f in shared), shared


@pytest.mark.parametrize("method", ["eventprop", "eest"])
@pytest.mark.parametrize("readout", [None, "spiking"], ids=["li", "spiking"])
def test_the_methods_run_none_of_the_oracle(method, readout):
    neuron = (
        LIF(tau_mem=10.0, tau_syn=5.0) if method == "eventprop" else LIF(tau_mem=20.0, tau_syn=10.0)
    )
    torch.manual_seed(0)
    gradient = get_registry().gradient(method)
    net = gradient.network(
        "3-6-2", neuron, readout=neuron if readout else None, backend="torch", weight_mean=1.0
    ).double()
    files = _functions_run(lambda: _forward_backward(net))
    assert any("snnkit_" + method in f for f in files)
    assert not [f for f in files if "/reference/" in f]
