"""EventProp: event-exact forward, adjoint backward; agreement with the oracles; declared limits."""

from __future__ import annotations

import math

import pytest
import torch
from snnkit_eventprop.method import EventProp
from snnkit_eventprop.simulate import LayerConfig, run_layer

from snnkit import LI, LIF, get_registry
from snnkit.conformance import case_names, check
from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.reference.exact_autograd import ExactAutograd

F64 = torch.float64


# --- conformance: finite differences of the exact simulation ----------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conformance_with_finite_differences(dtype):
    results = check(EventProp(), [dtype])
    assert len(results) == len(case_names(EventProp())) >= 8
    bad = [(r.case, r.status, r.detail) for r in results if not r.passed]
    assert not bad
    if dtype == "float64":  # the bound (what remains is finite-difference noise)
        assert max(r.max_rel_err for r in results) <= 1e-6


def _broken_jump(drop: str):
    """The adjoint's spike jump (``adjoint._jump``) with one term dropped."""

    def jump(config, a_v_n, current, g, recurrent_term):
        if drop == "all":
            return a_v_n
        tm, theta = config.tau_mem, config.threshold
        reset = 0.0 if drop == "reset" else a_v_n * (theta - config.v_after) / tm
        recurrent_term = 0.0 if drop == "recurrent" else recurrent_term
        return a_v_n - tm / (current - theta) * (g - reset - recurrent_term)

    return jump


class _Broken(EventProp):
    """EventProp on its torch path (where the test breaks the jump); forward untouched."""

    def network(self, *args, **kwargs):
        return super().network(*args, backend="torch", **kwargs)


@pytest.mark.parametrize(
    "drop,cases",
    [
        ("reset", ["single-layer", "deep", "multi-spike", "reset-subtract"]),
        ("recurrent", ["recurrent"]),
        ("all", ["single-layer", "deep", "li-readout", "equal-taus"]),
    ],
)
def test_dropping_a_jump_term_fails_conformance(drop, cases, monkeypatch):
    from snnkit_eventprop import adjoint

    from snnkit.conformance import run_case

    monkeypatch.setattr(adjoint, "_jump", _broken_jump(drop))
    for case in cases:
        result = run_case(_Broken(), case, "float64")
        assert result.status == "failed", (drop, case, result.detail)


# --- agreement with exact-autograd (two orders of the same chain rule) ---------------------

NETS = [
    ("4-6-3", LIF(tau_mem=10.0, tau_syn=5.0), "spiking", False),
    ("4-6-5-3", LIF(tau_mem=10.0, tau_syn=5.0), "li", False),
    ("4-6-3", LIF(tau_mem=10.0, tau_syn=5.0), "spiking", True),
    ("4-6-3", LIF(tau_mem=10.0, tau_syn=3.0, reset="zero"), "li", True),
    ("4-5-3", LIF(tau_mem=5.0, tau_syn=5.0), "spiking", False),
    ("4-5-3", LIF(tau_mem=8.0, tau_syn=12.0), "li", False),
]


GAIN, GAIN_MEAN = 2.0, 1.0


def _pair(shape, neuron, readout, recurrent, seed):
    torch.manual_seed(seed)
    spec = neuron if readout == "spiking" else LI(tau_mem=neuron.tau_mem, tau_syn=neuron.tau_syn)
    ref = ExactAutograd().network(shape, neuron, readout=spec, recurrent=recurrent).to(F64)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            lateral = name.endswith("recurrent_weight")
            w = torch.randn(p.shape, dtype=F64) + (0.0 if lateral else GAIN_MEAN)
            p.copy_(w * (0.4 if lateral else GAIN) / math.sqrt(p.shape[1]))
    net = EventProp().network(shape, neuron, readout=spec, recurrent=recurrent).to(F64)
    net.load_state_dict(ref.state_dict())
    return ref, net


def _value_and_grads(model, times, duration, seed):
    x = times.clone().requires_grad_(True)
    out = model(Events(x, duration))
    gen = torch.Generator().manual_seed(seed)
    loss = 0.0
    for s in out.spikes:
        c = torch.randn(s.shape, generator=gen, dtype=F64)
        loss = loss + torch.where(torch.isfinite(s), s * c, torch.zeros_like(s)).sum()
    if out.readout is not None:
        r = out.readout
        c = torch.randn(3, *r.jumps.shape[::2], generator=gen, dtype=F64)
        loss = loss + (r.mean() * c[0] + r.integral_exp() * c[1] + r.maximum() * c[2]).sum()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, [*params, x], allow_unused=True)
    grads = [
        torch.zeros_like(p) if g is None else g for g, p in zip(grads, [*params, x], strict=True)
    ]
    return [s.detach() for s in out.spikes], grads


@pytest.mark.parametrize("shape,neuron,readout,recurrent", NETS)
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_exact_autograd(shape, neuron, readout, recurrent, seed):
    ref, net = _pair(shape, neuron, readout, recurrent, seed)
    times = (torch.rand(3, 4, 2, dtype=F64) * 20.0).sort(-1).values
    want_spikes, want = _value_and_grads(ref, times, 40.0, seed)
    got_spikes, got = _value_and_grads(net, times, 40.0, seed)
    assert sum(int(torch.isfinite(s).sum()) for s in got_spikes) > 10
    for a, b in zip(got_spikes, want_spikes, strict=True):
        assert a.shape == b.shape and torch.equal(torch.isfinite(a), torch.isfinite(b))
        finite = torch.isfinite(b)
        assert (a[finite] - b[finite]).abs().max() <= 1e-11
    for a, b in zip(got, want, strict=True):
        scale = b.abs().max().clamp(min=1e-300)
        assert ((a - b).abs().max() / scale) <= 1e-10


# --- the two forward schedules agree; buffers; errors --------------------------------------


def _config(**changes):
    base = dict(
        tau_mem=10.0, tau_syn=5.0, threshold=1.0, reset="subtract", v_reset=0.0, duration=40.0
    )
    return LayerConfig(**{**base, "max_spikes": 64, **changes})


def test_recurrent_schedule_with_zero_recurrence_equals_feedforward():
    torch.manual_seed(3)
    pre = (torch.rand(4, 5, 3, dtype=F64) * 30).sort(-1).values
    w = torch.randn(7, 5, dtype=F64) * 1.5
    ff = run_layer(pre, w, None, _config())
    rec = run_layer(pre, w, torch.zeros(7, 7, dtype=F64), _config())
    assert torch.equal(torch.isfinite(ff.times), torch.isfinite(rec.times))
    finite = torch.isfinite(ff.times)
    assert int(finite.sum()) > 20
    assert (ff.times[finite] - rec.times[finite]).abs().max() < 1e-12
    assert (ff.currents[finite] - rec.currents[finite]).abs().max() < 1e-12


def test_spike_buffer_grows_and_bound_raises():
    pre = torch.zeros(1, 1, 1, dtype=F64)
    w = torch.full((2, 1), 50.0, dtype=F64)  # strong drive: many spikes per neuron
    record = run_layer(pre, w, None, _config(max_spikes=1000))
    assert record.times.shape[-1] > 4  # grown past the initial 4 slots
    assert torch.equal(record.counts, torch.isfinite(record.times).sum(-1))
    with pytest.raises(SnnkitError, match="fires more than max_spikes=3 times.*never dropped"):
        run_layer(pre, w, None, _config(max_spikes=3))
    net = EventProp().network("1-2-2", LIF(tau_mem=10.0, tau_syn=5.0), max_spikes=2)
    with torch.no_grad():
        net.layers[0].weight.fill_(50.0)
    with pytest.raises(SnnkitError, match="layer 0: .*max_spikes=2"):
        net(Events(torch.zeros(1, 1, 1), 40.0))


def test_silent_network_and_no_input():
    net = EventProp().network("3-4-2", LIF(tau_mem=10.0, tau_syn=5.0)).double()
    out = net(Events(torch.full((2, 3, 1), math.inf, dtype=F64), 10.0))
    assert out.spikes[0].shape == (2, 4, 0)
    assert torch.equal(out.readout.mean(), torch.zeros(2, 2, dtype=F64))


def test_bad_input_is_one_clear_error():
    method = EventProp()
    neuron = LIF(tau_mem=10.0, tau_syn=5.0)
    net = method.network("3-4-2", neuron)
    with pytest.raises(SnnkitError, match="takes snnkit.events.Events"):
        net(torch.zeros(2, 3, 1))
    with pytest.raises(
        SnnkitError, match=r"must be \[B, 3, K\] \(the network has 3 inputs\), got \(1, 2, 1\)"
    ):
        net(Events(torch.zeros(1, 2, 1), 10.0))
    with pytest.raises(SnnkitError, match="unknown option"):
        method.network("3-4-2", neuron, bogus=1)
    with pytest.raises(SnnkitError, match="mode must be one of"):
        method.network("3-4-2", neuron, mode="fast")
    with pytest.raises(SnnkitError, match="needs a positive step dt"):
        method.network("3-4-2", neuron, mode="grid")
    with pytest.raises(SnnkitError, match="max_spikes must be a positive integer"):
        method.network("3-4-2", neuron, max_spikes=0)
    assert method.supports(LIF(tau_mem=10.0)) is not None  # no synaptic current
    with pytest.raises(SnnkitError, match="does not support"):
        method.network("3-4-2", LIF(tau_mem=10.0))


def test_registered_with_its_losses():
    reg = get_registry()
    method = reg.gradient("eventprop")
    assert method.representation == "events" and method.oracle == "exact-events" and method.exact
    for name in ("sum", "sum_exp", "max", "avg_xentropy", "first_spike", "first_spike_exp"):
        assert reg.loss(name).name == name


def test_parameter_names_follow_the_event_contract():
    net = EventProp().network("3-4-4-2", LIF(tau_mem=10.0, tau_syn=5.0), recurrent=True)
    assert [n for n, _ in net.named_parameters()] == [
        "layers.0.weight",
        "layers.0.recurrent_weight",
        "layers.1.weight",
        "layers.1.recurrent_weight",
        "output.weight",
    ]
    assert net.output_kind == "trace"
    spiking = EventProp().network(
        "3-4-2", LIF(tau_mem=10.0, tau_syn=5.0), readout=LIF(tau_mem=10.0, tau_syn=5.0)
    )
    assert spiking.output_kind == "spikes"
