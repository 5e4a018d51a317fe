"""The EventProp losses: registered, exact through EventProp (= autograd of the exact reference)."""

from __future__ import annotations

import math

import pytest
import torch
from snnkit_eventprop.losses import LOSSES
from snnkit_eventprop.method import EventProp

from snnkit import LI, LIF, get_registry
from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.reference.exact_autograd import ExactAutograd

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)


def _nets(readout):
    spec = NEURON if readout == "spike_times" else LI(tau_mem=10.0, tau_syn=5.0)
    ref = ExactAutograd().network("4-6-3", NEURON, readout=spec).to(F64)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in ref.parameters():
            w = torch.randn(p.shape, generator=gen, dtype=F64) + 1.0
            p.copy_(w * 2.0 / math.sqrt(p.shape[1]))
    net = EventProp().network("4-6-3", NEURON, readout=spec).to(F64)
    net.load_state_dict(ref.state_dict())
    return ref, net


def _output(out, kind):
    if kind == "readout":
        return out.readout
    return out.events()


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: loss.name)
def test_loss_gradient_through_eventprop_equals_the_exact_reference(loss):
    ref, net = _nets(loss.input)
    gen = torch.Generator().manual_seed(0)
    times = (torch.rand(4, 4, 2, generator=gen, dtype=F64) * 20).sort(-1).values
    target = torch.tensor([0, 1, 2, 1])
    results = []
    for model in (ref, net):
        out = _output(model(Events(times, 40.0)), loss.input)
        value = loss(out, target)
        grads = torch.autograd.grad(value, list(model.parameters()))
        results.append((value.detach(), grads, loss.predict(out)))
    (v1, g1, p1), (v2, g2, p2) = results
    assert torch.isfinite(v2) and abs(float(v1 - v2)) <= 1e-12 * max(1.0, abs(float(v1)))
    assert torch.equal(p1, p2)
    for a, b in zip(g2, g1, strict=True):
        assert float((a - b).abs().max()) <= 1e-10 * float(b.abs().max()) + 1e-14
    assert any(float(g.abs().max()) > 0 for g in g2)


def test_losses_are_registered_and_declare_their_input():
    reg = get_registry()
    kinds = {loss.name: reg.loss(loss.name).input for loss in LOSSES}
    assert kinds == {
        "sum": "readout",
        "sum_exp": "readout",
        "max": "readout",
        "avg_xentropy": "readout",
    }
    # the spike-time losses of the same papers are the core's, for every event method
    for name in ("first_spike", "first_spike_exp"):
        assert reg.loss(name).input == "spike_times"
        assert reg.entries["loss"][name].plugin.module == "snnkit.builtin"


def test_readout_losses_reject_other_outputs():
    with pytest.raises(SnnkitError, match="reads an event network's LI readout"):
        get_registry().loss("sum_exp")(torch.zeros(5, 2, 3), torch.zeros(2, dtype=torch.long))


def test_exact_autograd_output_carries_the_window_for_first_spike_losses():
    """exact-autograd's output carries ``duration`` like eventprop's, so the first-spike
    losses run on either's ``output.events()`` without a manual window, and agree."""
    ref, net = _nets("spike_times")
    gen = torch.Generator().manual_seed(3)
    times = (torch.rand(4, 4, 2, generator=gen, dtype=F64) * 20).sort(-1).values
    target = torch.tensor([0, 1, 2, 1])
    loss = get_registry().loss("first_spike_exp")
    values = []
    for model in (ref, net):
        out = model(Events(times, 40.0))
        assert out.duration == 40.0
        values.append(loss(out.events(), target).detach())
    assert abs(float(values[0] - values[1])) <= 1e-12 * max(1.0, abs(float(values[0])))


def test_output_weight_init_options_are_shared_by_the_event_methods():
    """``output_weight_mean``/``output_weight_std`` set the last layer of both event methods
    (the Yin-Yang event recipe uses them), drawn in the same order from the same seed."""
    opts = {"weight_mean": 0.5, "weight_std": 0.3, "output_weight_mean": 2.0}
    opts["output_weight_std"] = 0.2
    nets = []
    for method in (ExactAutograd(), EventProp()):
        torch.manual_seed(7)
        nets.append(method.network("5-40-3", NEURON, readout=NEURON, **opts))
    ref, net = nets
    for (name, a), (_, b) in zip(ref.state_dict().items(), net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    torch.manual_seed(7)
    plain = ExactAutograd().network(
        "5-40-3", NEURON, readout=NEURON, weight_mean=0.5, weight_std=0.3
    )
    assert torch.equal(plain.layers[0].weight, ref.layers[0].weight)
    assert not torch.allclose(plain.output.weight, ref.output.weight)
    assert float(ref.output.weight.detach().mean()) > 2 * float(plain.output.weight.detach().mean())
