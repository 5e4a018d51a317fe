"""Grid mode: time-stepped EventProp whose gradient converges to the event-exact one as dt -> 0."""

from __future__ import annotations

import math

import pytest
import torch
from snnkit_eventprop.method import EventProp

from snnkit import LI, LIF
from snnkit.events import Events

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)
DTS = (0.2, 0.1, 0.05, 0.025)  # three halvings


def _net(mode, dt=None, readout="li", recurrent=False):
    spec = LI(tau_mem=10.0, tau_syn=5.0) if readout == "li" else NEURON
    net = (
        EventProp()
        .network("4-8-3", NEURON, readout=spec, recurrent=recurrent, mode=mode, dt=dt)
        .double()
    )
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in net.named_parameters():
            lateral = "recurrent" in name
            w = torch.randn(p.shape, generator=gen, dtype=F64) + (0.0 if lateral else 1.0)
            p.copy_(w * (0.3 if lateral else 2.0) / math.sqrt(p.shape[1]))
    return net


def _grads(net, times):
    out = net(Events(times, 40.0))
    gen = torch.Generator().manual_seed(3)
    loss = 0.0
    for s in out.spikes:
        c = torch.randn(s.shape, generator=gen, dtype=F64)
        loss = loss + torch.where(torch.isfinite(s), s * c, torch.zeros_like(s)).sum()
    if out.readout is not None:
        loss = loss + 3 * out.readout.mean().sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    counts = [int(torch.isfinite(s).sum()) for s in out.spikes]
    return torch.cat([g.flatten() for g in grads]), counts


@pytest.mark.parametrize("readout", ["li", "spikes"])
def test_grid_error_falls_with_dt(readout):
    times = torch.rand(2, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    times = times.sort(-1).values
    exact, counts = _grads(_net("exact", readout=readout), times)
    assert sum(counts) > 20
    errors = []
    for dt in DTS:
        grid, grid_counts = _grads(_net("grid", dt, readout=readout), times)
        assert grid_counts == counts  # same spikes: the error is the grid's alone
        errors.append(float((grid - exact).norm() / exact.norm()))
    x = torch.log(torch.tensor(DTS, dtype=F64))
    y = torch.log(torch.tensor(errors, dtype=F64))
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    assert slope >= 0.7, (errors, slope)
    assert errors[-1] < 1e-3 < errors[0], errors


def test_grid_recurrent_converges_once_steps_separate_coincident_spikes():
    """Recurrent spikes sharing a step are injected at the step's end: an error that vanishes
    once dt is below their separation (documented)."""
    times = torch.rand(2, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    times = times.sort(-1).values
    exact, counts = _grads(_net("exact", recurrent=True), times)
    coarse, _ = _grads(_net("grid", 0.2, recurrent=True), times)
    fine, fine_counts = _grads(_net("grid", 0.01, recurrent=True), times)
    assert fine_counts == counts
    assert float((fine - exact).norm() / exact.norm()) < 0.1 * float(
        (coarse - exact).norm() / exact.norm()
    )


def test_grid_forward_spike_times_close_to_exact():
    times = torch.rand(3, 4, 2, generator=torch.Generator().manual_seed(1), dtype=F64) * 20
    times = times.sort(-1).values
    exact = _net("exact", readout="spikes")(Events(times, 40.0)).spikes
    grid = _net("grid", 0.01, readout="spikes")(Events(times, 40.0)).spikes
    for a, b in zip(exact, grid, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
        finite = torch.isfinite(a)
        assert (a[finite] - b[finite]).abs().max() < 0.01
