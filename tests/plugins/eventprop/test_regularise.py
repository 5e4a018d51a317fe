"""The hidden spike-count regulariser (a heuristic): its closed form on one spike, the same
term on every backend and mode, and the direction it moves the spike count."""

from __future__ import annotations

import math

import pytest
import torch
from snnkit_eventprop.method import EventProp

from snnkit import LI, LIF, host
from snnkit.errors import SnnkitError
from snnkit.events import Events

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)
PATHS = [("exact", None, "torch"), ("exact", None, "cpu"), ("grid", 0.05, "torch"),
         ("grid", 0.05, "cpu")]  # fmt: skip


def _cpu_or_skip(backend):
    if backend == "cpu" and not host.available():
        pytest.skip("no C++ compiler for the CPU kernels")


def _net(shape="3-6-2", mode="exact", dt=None, backend="torch", recurrent=False, **reg):
    net = EventProp().network(
        shape, NEURON, readout=LI(tau_mem=10.0, tau_syn=5.0), recurrent=recurrent, mode=mode,
        dt=dt, backend=backend, **reg,
    ).double()  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in net.named_parameters():
            scale = 0.3 if "recurrent" in name else 2.5
            p.copy_((torch.rand(p.shape, generator=gen, dtype=F64) + 0.5) * scale / p.shape[1])
    return net


def _inputs(B=3, n=3, K=4):
    t = torch.rand(B, n, K, generator=torch.Generator().manual_seed(1), dtype=F64) * 30
    return Events(t.sort(-1).values, 40.0)


def test_one_spike_gets_c_added_to_a_v_before_it():
    """One neuron, one input spike at 0, one output spike at t_k, no loss but the
    regulariser: a_V(t_k-) = c = lambda (N - nu) / B and dL/dw = c K(t_k), with K the
    voltage a unit current jump at 0 leaves at t_k (closed form, independent of the code)."""
    lam, nu = 0.7, 0.25
    net = EventProp().network("1-1-1", NEURON, readout=LI(10.0, 5.0), backend="torch",
                              reg_strength=lam, reg_target=nu).double()  # fmt: skip
    with torch.no_grad():
        net.layers[0].weight.fill_(5.0)
        net.output.weight.zero_()
    out = net(Events(torch.zeros(1, 1, 1, dtype=F64), 40.0))
    (t_k,) = out.spikes[0][torch.isfinite(out.spikes[0])].tolist()
    (out.readout.mean() * 0.0).sum().backward()  # the loss itself contributes nothing
    tm, ts = 10.0, 5.0
    kernel = ts / (tm - ts) * (math.exp(-t_k / tm) - math.exp(-t_k / ts))
    c = lam * (1 - nu) / 1
    assert net.layers[0].weight.grad.item() == pytest.approx(c * kernel, rel=1e-12)


@pytest.mark.parametrize("recurrent", [False, True])
def test_every_backend_and_mode_adds_the_same_term(recurrent):
    grads = {}
    for mode, dt, backend in PATHS:
        _cpu_or_skip(backend)
        diffs = []
        for lam in (0.0, 0.4):
            net = _net(mode=mode, dt=dt, backend=backend, recurrent=recurrent,
                       reg_strength=lam, reg_target=1.0)  # fmt: skip
            out = net(_inputs())
            assert sum(int(torch.isfinite(s).sum()) for s in out.spikes) > 10
            out.readout.mean().sum().backward()
            diffs.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
        assert not torch.equal(diffs[0], diffs[1])  # the term is there
        grads[(mode, backend)] = diffs[1] - diffs[0]
    for mode in ("exact", "grid"):
        if (mode, "cpu") in grads:
            torch.testing.assert_close(grads[(mode, "cpu")], grads[(mode, "torch")],
                                       rtol=1e-10, atol=1e-14)  # fmt: skip


@pytest.mark.parametrize("target, fewer", [(0.0, True), (20.0, False)])
def test_a_step_moves_the_spike_count_towards_the_target(target, fewer):
    def count(net):
        with torch.no_grad():
            return int(torch.isfinite(net(_inputs(B=4, K=6)).spikes[0]).sum())

    net = _net(reg_strength=1.0, reg_target=target)
    before = count(net)
    out = net(_inputs(B=4, K=6))
    (out.readout.mean().sum() * 0.0).backward()  # the regulariser alone
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.05 * p.grad.sign() * (p.grad != 0)
    after = count(net)
    assert (after < before) if fewer else (after > before), (before, after)


@pytest.mark.parametrize("bad", [{"reg_strength": -1.0}, {"reg_target": float("nan")},
                                 {"reg_strength": float("inf")}, {"reg_target": "14"}])  # fmt: skip
def test_bad_regulariser_options_are_one_line(bad):
    with pytest.raises(SnnkitError, match="reg_"):
        EventProp().network("3-6-2", NEURON, readout=LI(10.0, 5.0), **bad)
