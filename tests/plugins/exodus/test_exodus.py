"""EXODUS plugin: conformance with BPTT, what it saves, its declared limits, its registration."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
from fixtures.memory import saved_bytes
from snnkit_exodus import Exodus

from snnkit import IF, LI, LIF
from snnkit.conformance import case_names, check
from snnkit.reference.bptt import BPTT


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conformance_with_bptt(dtype):
    results = check(Exodus(), [dtype])
    assert len(results) == len(case_names(Exodus()))
    skipped = {r.case for r in results if r.status == "skipped"}
    assert skipped == {"reset-zero"}
    assert all(r.passed for r in results if r.case not in skipped), [
        (r.case, r.detail) for r in results if not r.passed
    ]
    if dtype == "float64":  # the bound, and in fact ~1e-15
        assert max(r.max_rel_err for r in results if r.passed) <= 1e-10


def _saved_bytes(layer, x) -> int:
    return saved_bytes(lambda: layer.neurons.dynamics(x, layer.neurons.initial_state(x)))


CONFIGS = [
    (LIF(tau_mem=10.0), {}),
    (LIF(tau_mem=10.0, tau_syn=5.0), {}),
    (IF(), {}),
    (LIF(tau_mem=10.0, tau_syn=5.0), {"train_tau": True, "train_threshold": True}),
    (LIF(tau_mem=10.0), {"recurrent": True}),
]


@pytest.mark.parametrize("neuron,options", CONFIGS)
def test_saves_only_the_membrane(neuron, options):
    """EXODUS keeps one [T, B, N] tensor (the pre-reset membrane) plus O(B N) state, always."""
    torch.manual_seed(0)
    x = torch.randn(100, 8, 64).requires_grad_(True)
    ours = _saved_bytes(Exodus().layer(neuron, 64, 64, **options), x)
    ref = _saved_bytes(BPTT().layer(neuron, 64, 64, **options), x)
    membrane = x.numel() * x.element_size()
    assert membrane <= ours <= membrane + 8 * 8 * 64 * 4 + 64 * 64 * 4
    # the autograd oracle saves one tensor per step at best (plain LIF), many more once
    # tau, threshold or a recurrence are involved
    assert ours < ref
    if options:
        assert ours <= ref / 4


def test_declares_its_limits():
    assert Exodus().supports(LIF(reset="zero")) is not None
    assert Exodus().supports(LI()) is not None
    assert Exodus().supports(IF()) is None
    assert Exodus().oracle == "bptt" and Exodus().exact


def test_registered_through_its_entry_point_when_installed():
    try:
        metadata.distribution("snnkit")
    except metadata.PackageNotFoundError:
        pytest.skip("snnkit is not pip-installed here; the entry point exists only then")
    from snnkit.cli import default_method
    from snnkit.registry import load_registry

    registry = load_registry()
    entry = registry.entry("gradient", "exodus")
    assert entry.plugin.distribution == "snnkit" and entry.plugin.module == "snnkit_exodus.plugin"
    assert default_method(registry) == "exodus"


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained-tau-theta"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_gradient_through_the_carried_state_matches_bptt(recurrent, trained):
    """A loss on the returned state (v, i, a) backpropagates like BPTT's, for every parameter."""
    torch.manual_seed(3)
    neuron = LIF(tau_mem=5.0, tau_syn=3.0)
    opts = {
        "recurrent": recurrent,
        "weight_gain": 3.0,
        "train_tau": trained,
        "train_threshold": trained,
    }
    ours = Exodus().layer(neuron, 6, 7, **opts).double()
    ref = BPTT().layer(neuron, 6, 7, **opts).double()
    ref.load_state_dict(ours.state_dict())
    x = (torch.rand(20, 3, 6, dtype=torch.float64) < 0.4).double()
    c = torch.randn(3, 3, 7, dtype=torch.float64)
    grads = []
    for layer in (ours, ref):
        layer.reset_state()
        spikes = layer(x)
        st = layer.state
        loss = (spikes.sum(0) * c[0]).sum() + (st.v * c[1]).sum() + (st.i * c[2]).sum() + st.a.sum()
        grads.append(torch.autograd.grad(loss, list(layer.parameters())))
    assert ours.state.a.sum() > 0
    assert len(grads[0]) == 1 + recurrent + 3 * trained  # weight, (recurrent), tau_mem/syn, theta
    for g, r in zip(*grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


class _SavingInput(Exodus):
    """EXODUS with every layer in the input-saving mode."""

    def layer(self, *args, **options):
        return super().layer(*args, save="input", **options)


def test_input_saving_mode_is_conformant_with_bptt():
    results = check(_SavingInput(), ["float64"])
    assert {r.case for r in results if r.status == "skipped"} == {"reset-zero"}
    assert all(r.passed for r in results if r.status != "skipped")
    assert max(r.max_rel_err for r in results if r.passed) <= 1e-10


@pytest.mark.parametrize("recurrent", [False, True])
def test_input_saving_mode_equals_the_default_for_every_gradient(recurrent):
    """Same spikes, state and gradients (input, weight, bias, tau, theta, recurrence, carried
    state over two chained calls) as ``save="v"``, bit for bit on the torch scan's inputs."""
    torch.manual_seed(5)
    neuron = LIF(tau_mem=5.0, tau_syn=3.0)
    opts = dict(recurrent=recurrent, weight_gain=3.0, train_tau=True, train_threshold=True)
    ours = Exodus().layer(neuron, 6, 7, bias=True, save="input", **opts).double()
    ref = Exodus().layer(neuron, 6, 7, bias=True, **opts).double()
    with torch.no_grad():
        ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    x = (torch.rand(2, 15, 3, 6, dtype=torch.float64) < 0.4).double().requires_grad_(True)
    results = []
    for layer in (ours, ref):
        layer.reset_state()
        out = torch.cat([layer(x[0]), layer(x[1])])
        loss = (out * torch.linspace(-1, 1, 7, dtype=torch.float64)).sum() + layer.state.v.sum()
        results.append((out, torch.autograd.grad(loss, [x, *layer.parameters()])))
    assert results[0][0].sum() > 0
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    for g, r in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(g, r, rtol=1e-13, atol=1e-13)


def test_input_saving_mode_keeps_no_per_step_tensor():
    """Linear + LIF saves only its (uint8) input spikes and the weight; the default keeps
    the float membrane as well, and the oracle the float input and one tensor per step."""
    torch.manual_seed(0)
    neuron = LIF(tau_mem=10.0)
    x = (torch.rand(100, 8, 64) < 0.2).float()
    layers = [m().layer(neuron, 64, 64) for m in (Exodus, BPTT)]
    layers.append(Exodus().layer(neuron, 64, 64, save="input"))
    default, oracle, saving = (saved_bytes(lambda layer=layer: layer(x)) for layer in layers)
    spikes_u8, weight = x.numel(), 64 * 64 * 4
    assert saving <= spikes_u8 + weight + 8 * 64 * 4 * 8
    assert default >= 2 * x.numel() * 4 and saving <= oracle / 4


def test_input_saving_mode_keeps_real_valued_inputs_as_they_are():
    torch.manual_seed(1)
    layer = Exodus().layer(LIF(tau_mem=10.0), 4, 3, save="input", weight_gain=4.0).double()
    x = torch.randn(10, 2, 4, dtype=torch.float64, requires_grad=True)
    ref = Exodus().layer(LIF(tau_mem=10.0), 4, 3, weight_gain=4.0).double()
    ref.load_state_dict(layer.state_dict())
    g = [torch.autograd.grad(m(x).sum() + m.state.v.sum(), x)[0] for m in (layer, ref)]
    torch.testing.assert_close(g[0], g[1], rtol=1e-13, atol=1e-13)


def test_unknown_save_mode_is_one_line():
    from snnkit.errors import SnnkitError

    with pytest.raises(SnnkitError, match="save='graph': use one of v, input"):
        Exodus().layer(LIF(), 3, 2, save="graph")
