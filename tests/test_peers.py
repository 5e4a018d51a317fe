"""The bundled peers plugin: peer libraries' LIF neurons as snnkit methods, against BPTT.

Each installed peer must reproduce the oracle's forward pass exactly on inputs where the
library can express snnkit's LIF, and its gradient to the precision the library computes
in (snntorch and sinabs return float32 spikes, so their float64 gradient is float32-exact).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from snnkit import LIF, get_registry
from snnkit.surrogates import FastSigmoid, Triangle

# peer -> (surrogate it can express, relative gradient error allowed in float64)
PEERS = {
    "snntorch": (None, 1e-6),
    "sinabs": (None, 1e-6),
    "spikingjelly": (None, 1e-12),
    "norse": (FastSigmoid(slope=1.0), 1e-12),
}


def _installed(name: str) -> bool:
    return name in get_registry().names("gradient")


def _compare(name, spec, surrogate, x, chunks=1):
    """(forward spikes equal, relative gradient error) of ``name`` against BPTT."""
    reg = get_registry()
    readout = torch.linspace(-1, 1, x.shape[-1], dtype=torch.float64)
    out = {}
    for method in ("bptt", name):
        pop = reg.gradient(method).neuron(spec, x.shape[-1], surrogate=surrogate).double()
        inp = x.clone().requires_grad_()
        spikes = torch.cat([pop(part) for part in inp.tensor_split(chunks)])
        (grad,) = torch.autograd.grad((spikes * readout).sum(), inp)
        out[method] = spikes.detach(), grad, pop.state.v.detach()
    (s0, g0, v0), (s1, g1, v1) = out["bptt"], out[name]
    assert s1.dtype == torch.float64
    return torch.equal(s0, s1), ((g0 - g1).abs().max() / g0.abs().max()).item(), v0, v1


def _input(steps=40, batch=3, n=6, gain=0.9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, n, generator=gen, dtype=torch.float64) * gain


@pytest.mark.parametrize("name", sorted(PEERS))
@pytest.mark.parametrize(
    "spec", [LIF(tau_mem=5.0), LIF(tau_mem=5.0, tau_syn=3.0), LIF(tau_mem=8.0, reset="zero")]
)
def test_peer_matches_bptt(name, spec):
    if not _installed(name):
        pytest.skip(f"{name} is not installed (pip install 'snnkit[peers]')")
    method = get_registry().gradient(name)
    if method.supports(spec) is not None:
        pytest.skip(method.supports(spec))
    surrogate, tol = PEERS[name]
    gain = 0.9 if spec.tau_syn is None else 0.4
    same, err, v0, v1 = _compare(name, spec, surrogate, _input(gain=gain), chunks=2)
    assert same, "forward spikes differ from the oracle's"
    assert err < tol, f"gradient differs from BPTT by {err:.1e}"
    torch.testing.assert_close(v1, v0, rtol=1e-12, atol=1e-12)  # the carried membrane


@pytest.mark.parametrize("surrogate", [FastSigmoid(slope=1.0), Triangle(width=1.0)])
def test_norse_expresses_two_surrogates_and_says_when_it_cannot(surrogate):
    if not _installed("norse"):
        pytest.skip("norse is not installed")
    same, err, _, _ = _compare("norse", LIF(tau_mem=5.0), surrogate, _input())
    assert same and err < 1e-12
    pop = get_registry().gradient("norse").neuron(LIF(), 4)  # exponential: not expressible
    assert pop.notes and "cannot express" in pop.notes[0]
    assert not get_registry().gradient("norse").neuron(LIF(), 4, surrogate=surrogate).notes


def test_snntorch_resets_a_membrane_still_above_threshold_again():
    """A membrane >= 2 theta stays above threshold after the reset; snntorch subtracts the
    threshold once more at the next step (before integrating), snnkit's LIF does not."""
    if not _installed("snntorch"):
        pytest.skip("snntorch is not installed")
    x = torch.zeros(3, 1, 1, dtype=torch.float64)
    x[0] = 2.5
    same, _, _, _ = _compare("snntorch", LIF(tau_mem=5.0), None, x)
    assert not same


def test_peers_refuse_what_they_cannot_express():
    for name in PEERS:
        if not _installed(name):
            continue
        method = get_registry().gradient(name)
        assert "multi_spike" in (method.supports(LIF(multi_spike=True)) or "multi_spike")
        with pytest.raises(Exception, match="fixed tau and threshold"):
            method.neuron(LIF(), 4, train_threshold=True)
        with pytest.raises(Exception, match="recurrent"):
            method.neuron(LIF(), 4, recurrent=True)


def test_population_state_dict_is_the_oracles():
    for name in PEERS:
        if _installed(name):
            pop = get_registry().gradient(name).neuron(LIF(), 4).double()
            pop(torch.rand(5, 2, 4, dtype=torch.float64))
            ref = get_registry().gradient("bptt").neuron(LIF(), 4)
            assert pop.state_dict().keys() == ref.state_dict().keys()


def test_missing_peers_are_not_registered_and_snnkit_imports_none():
    code = (
        "import sys, snnkit_peers\n"
        "snnkit_peers.PEERS['nopeer'] = ('no_such_library_x', 'snnkit_peers.norse_lif:Norse')\n"
        "assert 'nopeer' in snnkit_peers.missing_peers()\n"
        "assert all(m.name != 'nopeer' for m in snnkit_peers.installed_peers())\n"
        "from snnkit import get_registry\n"
        "get_registry().names('gradient')\n"
        "heavy = {'snntorch', 'norse', 'spikingjelly', 'sinabs'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
