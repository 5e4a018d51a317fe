"""EEST: conformance, agreement with EventProp, broken variants, range, bad input, losses."""

from __future__ import annotations

import math

import pytest
import torch
from snnkit_eest import backward as eest_backward
from snnkit_eest.forward import LayerConfig, run_layer
from snnkit_eest.losses import SpikeCountLoss, SpikeTimeMSE
from snnkit_eest.method import EEST

from snnkit import LIF
from snnkit.conformance import case_names, run_case
from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.neurons import IF
from snnkit.registry import get_registry

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)


@pytest.mark.parametrize("case", case_names(EEST()))
def test_conformance_float64(case):
    result = run_case(EEST(), case, "float64")
    assert result.status in ("passed", "skipped"), result
    if case in ("single-layer", "deep", "multi-spike", "li-readout", "reset-subtract"):
        assert result.passed, result


@pytest.mark.parametrize("case", ["deep", "multi-spike"])
def test_conformance_float32(case):
    assert run_case(EEST(), case, "float32").passed


def test_registered_and_supports():
    reg = get_registry()
    assert isinstance(reg.gradient("eest"), EEST)
    m = EEST()
    assert m.supports(LIF(tau_mem=20.0, tau_syn=10.0)) is None
    assert m.supports(LIF(tau_mem=20.0, tau_syn=10.0, reset="zero")) is None
    assert "tau_mem = 2 tau_syn" in m.supports(LIF(tau_mem=20.0, tau_syn=5.0))
    assert "tau_syn" in m.supports(LIF(tau_mem=20.0))
    assert "leaky" in m.supports(IF(tau_syn=5.0))
    with pytest.raises(SnnkitError, match="recurrent"):
        m.network("4-5-3", NEURON, readout=NEURON, recurrent=True)
    with pytest.raises(SnnkitError, match="unknown option"):
        m.network("4-5-3", NEURON, readout=NEURON, bogus=1)


# --- agreement with EventProp: two orders of the same chain rule ---------------------------


def _pair(seed=3, gain=3.0):
    """The same 2-layer multi-spike network as EEST and EventProp, float64, and an input."""
    gen = torch.Generator().manual_seed(seed)
    spec = LIF(tau_mem=10.0, tau_syn=5.0, reset="subtract")
    eest = EEST().network("6-12-4", spec, readout=spec, backend="torch").to(F64)
    with torch.no_grad():
        for p in eest.parameters():
            p.copy_(
                (torch.randn(p.shape, generator=gen, dtype=F64) + 0.6) * gain / p.shape[1] ** 0.5
            )
    ep = get_registry().gradient("eventprop").network("6-12-4", spec, readout=spec).to(F64)
    ep.load_state_dict(eest.state_dict())
    times = (torch.rand(5, 6, 3, generator=gen, dtype=F64) * 30).sort(-1).values
    return eest, ep, times, gen


def _grads(net, times, coef):
    t = times.clone().requires_grad_(True)
    out = net(Events(t, 60.0))
    loss = sum(
        (torch.where(torch.isfinite(s), s, torch.zeros_like(s)) * c[..., : s.shape[-1]]).sum()
        for s, c in zip(out.spikes, coef, strict=True)
    )
    return out.spikes, torch.autograd.grad(loss, [*net.parameters(), t])


def _relerr(a, b):
    return max(((x - y).abs().max() / y.abs().max()).item() for x, y in zip(a, b, strict=True))


def _agreement(eest, ep, times, gen):
    coef = [torch.randn(5, n, 64, generator=gen, dtype=F64) for n in (12, 4)]
    s_eest, g_eest = _grads(eest, times, coef)
    s_ep, g_ep = _grads(ep, times, coef)
    for a, b in zip(s_eest, s_ep, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
    counts = [int(torch.isfinite(s).sum(-1).max()) for s in s_eest]
    return _relerr(g_eest, g_ep), counts, sum(int(torch.isfinite(s).sum()) for s in s_eest)


def test_agrees_with_eventprop():
    err, counts, total = _agreement(*_pair())
    assert min(counts) >= 3 and total > 100  # multi-spike in both layers
    assert err <= 1e-10, err


def _uncoupled_totals(record, grad, config):
    """``spike_totals`` without the reset coupling: each spike's own ``G_k tau / x_k``."""
    finite = torch.isfinite(record.times)
    x = torch.where(finite, record.currents - config.threshold, torch.ones_like(record.times))
    return torch.where(finite, grad * config.tau / x, torch.zeros_like(grad))


def test_broken_reset_coupling_fails_agreement_and_conformance(monkeypatch):
    monkeypatch.setattr(eest_backward, "spike_totals", _uncoupled_totals)
    eest, ep, times, gen = _pair()  # eest on its torch path
    err, _, _ = _agreement(eest, ep, times, gen)
    assert err > 1e-3

    class NoCoupling(EEST):
        def network(self, *args, **kw):
            return super().network(*args, backend="torch", **kw)

    assert not run_case(NoCoupling(), "multi-spike", "float64").passed


def test_sign_flip_fails_conformance(monkeypatch):
    real = eest_backward.backward_layer

    def flipped(*args, **kw):
        d_arr, d_w = real(*args, **kw)
        return d_arr, -d_w

    monkeypatch.setattr("snnkit_eest.function.backward_layer", flipped)

    class Flipped(EEST):
        def network(self, *args, **kw):
            return super().network(*args, backend="torch", **kw)

    assert not run_case(Flipped(), "single-layer", "float64").passed


# --- range: exponentials stay finite far from t = 0 ----------------------------------------


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
def test_late_inputs_shift_the_spikes(dtype):
    """Inputs 5000 ms in (exp(2t/tau) = e^1000 would overflow): the same spikes, shifted."""
    gen = torch.Generator().manual_seed(1)
    spec = LIF(tau_mem=10.0, tau_syn=5.0)
    net = EEST().network("4-5", spec, readout=spec, backend="torch").to(dtype)
    with torch.no_grad():
        net.output.weight.copy_(torch.rand(5, 4, generator=gen) * 6 + 1)
    times = (torch.rand(2, 4, 2, generator=gen) * 20).sort(-1).values.to(dtype)
    out = []
    for shift in (0.0, 5000.0):
        t = (times + shift).requires_grad_(True)
        spikes = net(Events(t, 5040.0)).spikes[0]
        finite = torch.isfinite(spikes)
        loss = torch.where(finite, spikes - shift, torch.zeros_like(spikes)).sum()
        g_w, g_t = torch.autograd.grad(loss, [net.output.weight, t])
        out.append((spikes - shift, g_w, g_t))
    (s0, w0, t0), (s1, w1, t1) = out
    assert torch.equal(torch.isfinite(s0), torch.isfinite(s1)) and torch.isfinite(s0).sum() > 4
    tol = 1e-9 if dtype == F64 else 2e-2
    f = torch.isfinite(s0)
    assert (s0[f] - s1[f]).abs().max() < tol * 40
    assert _relerr([w1, t1], [w0, t0]) < tol


# --- forward details --------------------------------------------------------------------


def test_spike_buffer_grows_and_bounds():
    pre = torch.zeros(1, 1, 1, dtype=F64)
    w = torch.full((2, 1), 50.0, dtype=F64)
    record = run_layer(pre, w, LayerConfig(10.0, 1.0, 40.0, 1000))
    assert record.times.shape[-1] > 8 and torch.isfinite(record.times).all()
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        run_layer(pre, w, LayerConfig(10.0, 1.0, 40.0, 3))


def test_single_spike_limit():
    pre = torch.zeros(1, 1, 1, dtype=F64)
    w = torch.full((2, 1), 50.0, dtype=F64)
    multi = run_layer(pre, w, LayerConfig(10.0, 1.0, 40.0, 1000))
    single = run_layer(pre, w, LayerConfig(10.0, 1.0, 40.0, 1000, spike_limit=1))
    assert single.times.shape[-1] == 1
    assert torch.equal(single.times[..., 0], multi.times[..., 0])


@pytest.mark.parametrize(
    "times,match",
    [
        (torch.full((2, 4, 1), math.nan), "NaN"),
        (torch.zeros(2, 3, 1), r"\[B, 4, K\]"),
        (torch.zeros(2, 4), r"\[B, 4, K\]"),
    ],
)
def test_bad_input_is_one_line(times, match):
    net = EEST().network("4-5", NEURON, readout=NEURON)
    with pytest.raises(SnnkitError, match=match):
        net(_Fake(times))
    with pytest.raises(SnnkitError, match="Events"):
        net(torch.zeros(2, 4, 1))


def _Fake(times):
    """An Events that skipped its own checks (the network must check for itself)."""
    events = object.__new__(Events)
    object.__setattr__(events, "times", times)
    object.__setattr__(events, "duration", 40.0)
    return events


# --- losses ----------------------------------------------------------------------------


def test_spike_time_mse_and_count_loss():
    times = torch.tensor([[[2.0, 5.0], [4.0, math.inf], [math.inf, math.inf]]], requires_grad=True)
    target = torch.tensor([1])
    mse = SpikeTimeMSE(duration=10.0)
    loss = mse(times, target)
    (g,) = torch.autograd.grad(loss, times)
    # goals 9, 3, 9 (fractions 0.9/0.3 of T = 10); the silent output is a constant
    want = torch.tensor([2.0 * (2.0 - 9.0), 2.0 * (4.0 - 3.0), 0.0]) / 100.0 / 3.0
    assert torch.allclose(g[0, :, 0], want) and g[0, :, 1].abs().sum() == 0
    assert mse.predict(times.detach()).item() == 0
    count = SpikeCountLoss(duration=10.0)
    loss = count(times, target)  # counts 2, 1, 0 vs goals 0, 4, 0
    assert loss.item() == pytest.approx(4.0 + 9.0)
    (g,) = torch.autograd.grad(loss, times)
    assert g[0, 1, 0] > 0  # the label should fire more: its spike is pulled earlier
    assert g[0, 0, 0] < 0 and count.predict(times.detach()).item() == 0
    assert not SpikeCountLoss.exact
    assert get_registry().loss("eest_spike_count").name == "eest_spike_count"
    assert get_registry().loss("spike_time_mse").name == "spike_time_mse"


# --- snnkit run --------------------------------------------------------------------------


def test_run_defaults_make_yinyang_trainable(tmp_path):
    from snnkit.train import RunConfig, run

    config = RunConfig(grad="eest", epochs=1, hidden="8", dataset_options={"size": 64})
    result = run(config, db=None, out=tmp_path, progress=False)
    cfg = result.config
    assert (cfg.readout, cfg.loss, cfg.lr) == ("spiking", "first_spike_exp", 5e-4)
    assert cfg.neuron_options == {"tau_mem": 20.0, "tau_syn": 10.0}
    assert 0.0 <= result.final.test_accuracy <= 1.0


@pytest.mark.slow
def test_learns_yinyang(tmp_path):
    from snnkit.train import RunConfig, run

    torch.set_num_threads(1)
    result = run(RunConfig(grad="eest", epochs=3), db=None, out=tmp_path, progress=False)
    assert result.final.test_accuracy > 0.8
