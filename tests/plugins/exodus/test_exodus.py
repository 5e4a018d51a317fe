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
    return saved_bytes(lambda: layer.dynamics(x, layer.initial_state(x)))


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
