"""Tests for snnkit.nn: shapes, the leaky integrator, the readout, layer state and networks."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.neurons import IF, LI, LIF
from snnkit.nn import (
    LIFState,
    Network,
    NetworkOutput,
    NeuronParameters,
    Readout,
    SpikingLayer,
    leaky_integrate,
    parse_shape,
)
from snnkit.reference.bptt import BPTT

F64 = torch.float64

# ---------------------------------------------------------------------------------------
# parse_shape
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("5-120-3", [5, 120, 3]),
        ("2-1", [2, 1]),
        (" 7-3 ", [7, 3]),
        ("700-256-256-20", [700, 256, 256, 20]),
        ([5, 3], [5, 3]),
        ((4, 8, 2), [4, 8, 2]),
    ],
)
def test_parse_shape_good(shape, expected):
    assert parse_shape(shape) == expected


@pytest.mark.parametrize(
    "shape",
    ["5", "", "5--3", "5-3-", "-5-3", "a-3", "5-0-3", "5-3.5", "5,120,3", [5], [], [5, 0], [3, -1]],
)
def test_parse_shape_bad(shape):
    with pytest.raises(SnnkitError):
        parse_shape(shape)


# ---------------------------------------------------------------------------------------
# leaky_integrate
# ---------------------------------------------------------------------------------------


def loop_integrate(x, tau, dt, init=None):
    """y_t = exp(-dt/tau) y_{t-1} + x_t, step by step."""
    decay = torch.exp(-dt / tau)
    y = torch.zeros_like(x[0]) if init is None else init
    out = []
    for t in range(x.shape[0]):
        y = decay * y + x[t]
        out.append(y)
    return torch.stack(out)


@pytest.mark.parametrize("with_init", [False, True])
def test_leaky_integrate_matches_loop(with_init):
    torch.manual_seed(0)
    x = torch.randn(17, 3, 4, dtype=F64)
    tau = torch.tensor([0.7, 2.0, 10.0, 123.0], dtype=F64)
    init = torch.randn(3, 4, dtype=F64) if with_init else None
    y = leaky_integrate(x, tau, 0.5, init)
    assert y.shape == x.shape and y.dtype == F64
    torch.testing.assert_close(y, loop_integrate(x, tau, 0.5, init), rtol=1e-12, atol=1e-12)


def test_leaky_integrate_by_hand_and_infinite_tau():
    # decay 0.5 (tau = dt / ln 2): y = [1, 0.5 + 2, 1.25 + 0] from init 0.5 -> [1.25, ...]
    x = torch.tensor([1.0, 2.0, 0.0], dtype=F64).reshape(3, 1, 1)
    tau = torch.tensor([1.0 / math.log(2.0)], dtype=F64)
    y = leaky_integrate(x, tau, 1.0, torch.tensor([[0.5]], dtype=F64))
    torch.testing.assert_close(y.flatten(), torch.tensor([1.25, 2.625, 1.3125], dtype=F64))
    # tau = inf: a plain running sum (IF neurons use it)
    y_inf = leaky_integrate(x, torch.tensor([math.inf], dtype=F64), 1.0)
    torch.testing.assert_close(y_inf.flatten(), torch.tensor([1.0, 3.0, 3.0], dtype=F64))


def test_leaky_integrate_gradients():
    torch.manual_seed(1)
    x = torch.randn(12, 2, 3, dtype=F64, requires_grad=True)
    init = torch.randn(2, 3, dtype=F64, requires_grad=True)
    tau = torch.tensor([1.5, 4.0, 9.0], dtype=F64, requires_grad=True)
    c = torch.randn(12, 2, 3, dtype=F64)
    q = (leaky_integrate(x, tau, 1.0, init) * c).sum()
    gx, ginit, gtau = torch.autograd.grad(q, (x, init, tau))
    # x and init against the loop's gradient
    q_loop = (loop_integrate(x, tau, 1.0, init) * c).sum()
    lx, linit, ltau = torch.autograd.grad(q_loop, (x, init, tau))
    torch.testing.assert_close(gx, lx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ginit, linit, rtol=1e-12, atol=1e-12)
    # tau against central finite differences
    h = 1e-6
    fd = torch.zeros(3, dtype=F64)
    with torch.no_grad():
        for n in range(3):
            e = torch.zeros(3, dtype=F64)
            e[n] = h
            fd[n] = (
                (leaky_integrate(x, tau + e, 1.0, init) * c).sum()
                - (leaky_integrate(x, tau - e, 1.0, init) * c).sum()
            ) / (2 * h)
    torch.testing.assert_close(gtau, fd, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(gtau, ltau, rtol=1e-10, atol=1e-12)
    assert gtau.abs().min() > 1e-3


# ---------------------------------------------------------------------------------------
# Readout
# ---------------------------------------------------------------------------------------


def loop_readout(x, weight, alpha, beta):
    current = x @ weight.t()
    v = torch.zeros_like(current[0])
    i = torch.zeros_like(current[0])
    out = []
    for t in range(x.shape[0]):
        i = current[t] if beta is None else beta * i + current[t]
        v = alpha * v + i
        out.append(v)
    return torch.stack(out)


@pytest.mark.parametrize("neuron", [LI(tau_mem=5.0), LI(tau_mem=8.0, tau_syn=2.0, dt=0.5)])
def test_readout_equals_li_equations(neuron):
    torch.manual_seed(2)
    ro = Readout(4, 3, neuron).to(F64)
    x = torch.rand(15, 2, 4, dtype=F64)
    out = ro(x)
    assert out.shape == (15, 2, 3)
    alpha = math.exp(-neuron.dt / neuron.tau_mem)
    beta = None if neuron.tau_syn is None else math.exp(-neuron.dt / neuron.tau_syn)
    expected = loop_readout(x, ro.weight.detach(), alpha, beta)
    torch.testing.assert_close(out.detach(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("neuron", [LI(tau_mem=5.0), LI(tau_mem=8.0, tau_syn=2.0)])
def test_readout_chained_calls_and_reset(neuron):
    torch.manual_seed(3)
    ro = Readout(4, 3, neuron).to(F64)
    x = torch.rand(15, 2, 4, dtype=F64)
    whole = ro(x).detach()
    ro.reset_state()
    assert ro.state is None
    parts = [ro(x[:6]).detach(), ro(x[6:7]).detach(), ro(x[7:]).detach()]
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-12, atol=1e-12)
    # without reset the next call continues from the carried state
    again = ro(x).detach()
    assert (again - whole).abs().max() > 1e-3
    ro.reset_state()
    torch.testing.assert_close(ro(x).detach(), whole, rtol=0, atol=0)
    with pytest.raises(SnnkitError):
        ro(torch.rand(3, 5, 4, dtype=F64))  # carried state has batch 2


def test_readout_chained_gradients():
    torch.manual_seed(4)
    ro = Readout(4, 3, LI(tau_mem=6.0, tau_syn=3.0), train_tau=True).to(F64)
    x = torch.rand(10, 2, 4, dtype=F64, requires_grad=True)
    c = torch.randn(10, 2, 3, dtype=F64)
    params = [ro.weight, ro.params.tau_mem, ro.params.tau_syn]
    g_whole = torch.autograd.grad((ro(x) * c).sum(), params + [x])
    ro.reset_state()
    out = torch.cat([ro(x[:4]), ro(x[4:])])
    g_parts = torch.autograd.grad((out * c).sum(), params + [x])
    for a, b in zip(g_whole, g_parts, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(g.abs().max() > 1e-3 for g in g_whole)


def test_readout_rejects_spiking_neuron_and_bad_input():
    with pytest.raises(SnnkitError):
        Readout(3, 2, LIF())
    ro = Readout(3, 2)
    with pytest.raises(SnnkitError):
        ro(torch.rand(5, 2, 4))
    with pytest.raises(SnnkitError):
        ro(torch.rand(5, 3))


# ---------------------------------------------------------------------------------------
# SpikingLayer (Dense + BPTT neurons)
# ---------------------------------------------------------------------------------------

LAYER_CASES = [
    (LIF(tau_mem=5.0), False),
    (LIF(tau_mem=5.0, tau_syn=3.0), True),
    (IF(), True),
    (LIF(tau_mem=4.0, reset="zero"), True),
]


def _layer(neuron, recurrent, seed=0, **kwargs):
    torch.manual_seed(seed)
    layer = BPTT().layer(neuron, 3, 4, recurrent=recurrent, weight_gain=3.0, **kwargs).to(F64)
    if recurrent:
        with torch.no_grad():
            layer.recurrent_weight.normal_(0.0, 0.6)
    return layer


def _run_chunks(layer, x, cuts):
    layer.reset_state()
    spikes, membrane = [], []
    for lo, hi in zip([0, *cuts], [*cuts, x.shape[0]], strict=True):
        spikes.append(layer(x[lo:hi]))
        membrane.append(layer.neurons.last_membrane)
    return torch.cat(spikes), torch.cat(membrane)


@pytest.mark.parametrize(("neuron", "recurrent"), LAYER_CASES, ids=["lif", "syn-rec", "if", "zero"])
@pytest.mark.parametrize("reset_grad", ["through", "detached"])
def test_layer_chained_calls_equal_one_call(neuron, recurrent, reset_grad):
    layer = _layer(neuron, recurrent, reset_grad=reset_grad)
    x = torch.rand(16, 2, 3, dtype=F64) * 1.2
    c_s = torch.randn(16, 2, 4, dtype=F64)
    c_v = torch.randn(16, 2, 4, dtype=F64)
    params = [p for p in layer.parameters()]
    results = []
    for cuts in ([], [5], [1, 9, 10]):
        xr = x.clone().requires_grad_(True)
        spikes, membrane = _run_chunks(layer, xr, cuts)
        loss = (spikes * c_s).sum() + (membrane * c_v).sum()
        grads = torch.autograd.grad(loss, params + [xr])
        results.append((spikes.detach(), membrane.detach(), grads))
    spikes0, membrane0, grads0 = results[0]
    assert 0 < spikes0.sum() < spikes0.numel()
    for spikes, membrane, grads in results[1:]:
        assert torch.equal(spikes, spikes0)
        torch.testing.assert_close(membrane, membrane0, rtol=1e-14, atol=1e-14)
        for a, b in zip(grads, grads0, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a fresh start from zero state at the cut would differ: the carried state matters
    layer.reset_state()
    restarted = layer(x[5:]).detach()
    assert not torch.equal(restarted, spikes0[5:]) or not torch.allclose(
        layer.neurons.last_membrane.detach(), membrane0[5:]
    )


def test_layer_batch_size_and_reset():
    layer = _layer(LIF(tau_mem=5.0, tau_syn=2.0), True)
    x2 = torch.rand(6, 2, 3, dtype=F64)
    x3 = torch.rand(6, 3, 3, dtype=F64)
    layer(x2)
    assert layer.state is not None and layer.state.v.shape == (2, 4)
    with pytest.raises(SnnkitError):
        layer(x3)
    layer.reset_state()
    assert layer.state is None
    out3 = layer(x3)
    assert out3.shape == (6, 3, 4)
    fresh = _layer(LIF(tau_mem=5.0, tau_syn=2.0), True)
    assert torch.equal(fresh(x3), out3)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(5, 2, 4, dtype=F64),  # 4 features, layer takes 3
        torch.rand(5, 3, dtype=F64),  # 2-D
        torch.rand(5, 2, 3, 1, dtype=F64),  # 4-D
        torch.full((5, 2, 3), math.nan, dtype=F64),
        torch.ones(5, 2, 3, dtype=torch.int64),
    ],
    ids=["features", "ndim2", "ndim4", "nan", "int"],
)
def test_layer_rejects_bad_input(bad):
    layer = _layer(LIF(), False)
    with pytest.raises(SnnkitError):
        layer(bad)


def test_layer_rejects_non_spiking_neuron():
    with pytest.raises(SnnkitError):
        BPTT().layer(LI(), 3, 4)


def test_networks_do_not_share_state():
    torch.manual_seed(5)
    net1 = BPTT().network("5-7-3", LIF())
    net2 = BPTT().network("5-7-3", LIF())
    x = torch.rand(8, 2, 5)
    net1(x)
    assert net1.layers[0].state is not None and net1.output.state is not None
    assert net2.layers[0].state is None and net2.output.state is None
    saved = net1.layers[0].state
    v_before, a_before = saved.v.clone(), saved.a.clone()
    out_before = net1.output.state[0].clone()
    net2(torch.rand(8, 4, 5) * 3)  # another batch size: would raise if state were shared
    assert net1.layers[0].state is saved
    assert torch.equal(saved.v, v_before) and torch.equal(saved.a, a_before)
    assert torch.equal(net1.output.state[0], out_before)
    assert net2.layers[0].state.v.shape == (4, 7)


def test_detach_state_cuts_the_graph():
    layer = _layer(LIF(tau_mem=5.0, tau_syn=2.0), True)
    x = (torch.rand(12, 2, 3, dtype=F64) * 1.2).requires_grad_(True)
    c = torch.randn(6, 2, 4, dtype=F64)
    # without detaching, the second chunk's loss reaches the first chunk's input
    layer(x[:6])
    (g_kept,) = torch.autograd.grad((layer(x[6:]) * c).sum(), x)
    assert g_kept[:6].abs().max() > 0
    layer.reset_state()
    layer(x[:6])
    before = layer.state
    layer.detach_state()
    after = layer.state
    assert not after.v.requires_grad and not after.i.requires_grad and not after.a.requires_grad
    assert torch.equal(after.v, before.v) and torch.equal(after.i, before.i)
    assert torch.equal(after.a, before.a)
    (g_cut,) = torch.autograd.grad((layer(x[6:]) * c).sum(), x)
    assert torch.equal(g_cut[:6], torch.zeros_like(g_cut[:6]))
    torch.testing.assert_close(g_cut[6:], g_kept[6:], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# NeuronParameters
# ---------------------------------------------------------------------------------------


def test_neuron_parameters_rejects_bad_training_requests():
    with pytest.raises(SnnkitError):
        NeuronParameters(IF(), 3, train_tau=True)
    with pytest.raises(SnnkitError):
        NeuronParameters(LI(), 3, train_threshold=True)
    with pytest.raises(SnnkitError):
        Readout(3, 2, LI(tau_mem=math.inf), train_tau=True)
    with pytest.raises(SnnkitError):
        BPTT().layer(IF(), 3, 4, train_tau=True)
    for option in ("train_tau", "train_threshold"):  # a truthy string is not a yes
        with pytest.raises(SnnkitError, match=f"{option} must be true or false, got 'maybe'"):
            BPTT().neuron(LIF(), 3, **{option: "maybe"})


def test_neuron_parameters_values_and_trainability():
    p = NeuronParameters(LIF(tau_mem=4.0, tau_syn=2.0, threshold=0.5, dt=0.5), 3)
    assert [name for name, _ in p.named_parameters()] == []
    assert set(p.constants) == {"tau_mem", "tau_syn", "threshold"}
    assert p.state_dict() == {}  # fixed values come from the spec, not from checkpoints
    c = p.coefficients()
    torch.testing.assert_close(c.alpha, torch.full((3,), math.exp(-0.125)))
    torch.testing.assert_close(c.beta, torch.full((3,), math.exp(-0.25)))
    torch.testing.assert_close(c.m, torch.full((3,), 0.5))
    assert NeuronParameters(LIF(), 2).coefficients().beta is None
    assert torch.equal(NeuronParameters(IF(), 2).coefficients().alpha, torch.ones(2))
    fixed = NeuronParameters(LIF(threshold=2.0, subtract=0.25), 2, train_threshold=True)
    assert torch.equal(fixed.coefficients().m, torch.full((2,), 0.25))
    trained = NeuronParameters(LIF(tau_syn=2.0), 3, train_tau=True, train_threshold=True)
    names = {name for name, _ in trained.named_parameters()}
    assert names == {"tau_mem", "tau_syn", "threshold"}


def test_neuron_parameters_to_float64():
    p = NeuronParameters(LIF(tau_mem=8.0, tau_syn=2.0), 3).to(F64)
    assert p.tau_mem.dtype == F64 and p.tau_syn.dtype == F64 and p.threshold.dtype == F64
    assert p.coefficients().alpha.dtype == F64
    torch.testing.assert_close(
        p.coefficients().alpha, torch.full((3,), math.exp(-1 / 8), dtype=F64)
    )
    trained = NeuronParameters(LIF(tau_mem=8.0), 3, train_tau=True).to(F64)
    assert trained.tau_mem.dtype == F64 and isinstance(trained.tau_mem, torch.nn.Parameter)


def test_neuron_parameters_float64_keeps_spec_values():
    neuron = LIF(tau_mem=3.3, threshold=0.1)
    p = NeuronParameters(neuron, 2).to(F64)
    alpha = torch.full((2,), neuron.alpha, dtype=F64)
    torch.testing.assert_close(p.coefficients().alpha, alpha, rtol=1e-15, atol=0)
    torch.testing.assert_close(p.threshold, torch.full((2,), 0.1, dtype=F64), rtol=1e-15, atol=0)


def test_trainable_tau_and_threshold_get_gradients():
    torch.manual_seed(6)
    layer = (
        BPTT()
        .layer(
            LIF(tau_mem=5.0, tau_syn=2.0),
            3,
            4,
            train_tau=True,
            train_threshold=True,
            weight_gain=3.0,
        )
        .to(F64)
    )
    x = torch.rand(10, 2, 3, dtype=F64)
    out = layer(x)
    assert out.sum() > 0
    loss = (out * torch.randn_like(out)).sum() + (
        layer.neurons.last_membrane * torch.randn_like(out)
    ).sum()
    loss.backward()
    p = layer.params
    for param in (p.tau_mem, p.tau_syn, p.threshold):
        assert param.grad is not None and param.grad.shape == (4,)
        assert param.grad.abs().max() > 1e-2
    frozen = BPTT().layer(LIF(tau_mem=5.0), 3, 4)
    assert {name for name, _ in frozen.named_parameters()} == {"synapse.weight"}


# ---------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------


def test_network_with_li_readout():
    torch.manual_seed(7)
    net = BPTT().network("5-7-6-3", LIF(tau_mem=4.0), recurrent=True)
    assert isinstance(net, Network) and net.output_kind == "trace"
    assert isinstance(net.output, Readout)
    assert net.output.neuron.tau_mem == 4.0
    assert [layer.recurrent for layer in net.layers] == [True, True]
    x = torch.rand(9, 2, 5) * 2
    out = net(x)
    assert isinstance(out, NetworkOutput)
    assert out.output.shape == (9, 2, 3)
    assert [h.shape for h in out.hidden_spikes] == [(9, 2, 7), (9, 2, 6)]
    # the output is the readout applied to the last hidden layer's spikes
    ro = Readout(6, 3, net.output.neuron)
    ro.load_state_dict(net.output.state_dict())
    torch.testing.assert_close(ro(out.hidden_spikes[-1]), out.output, rtol=0, atol=0)


def test_network_with_spiking_output():
    torch.manual_seed(8)
    net = BPTT().network("5-7-3", LIF(), readout=LIF(tau_mem=3.0))
    assert net.output_kind == "spikes"
    assert isinstance(net.output, SpikingLayer) and net.output.neuron.tau_mem == 3.0
    out = net(torch.rand(9, 4, 5))
    assert out.output.shape == (9, 4, 3)
    assert len(out.hidden_spikes) == 1 and out.hidden_spikes[0].shape == (9, 4, 7)
    assert bool(((out.output == 0) | (out.output == 1)).all())


def test_network_if_neurons_readout_tau():
    net = BPTT().network([4, 3], IF(dt=0.5))
    assert len(net.layers) == 0
    assert net.output.neuron.tau_mem == 5.0 and net.output.neuron.dt == 0.5
    assert net(torch.rand(3, 2, 4)).output.shape == (3, 2, 3)
    with pytest.raises(SnnkitError):
        BPTT().network("4-5-3", LI())
    with pytest.raises(SnnkitError):
        BPTT().network("4", LIF())


def test_network_reset_and_detach_state():
    torch.manual_seed(9)
    net = BPTT().network("5-7-6-3", LIF(tau_syn=2.0), readout=LI(tau_mem=5.0, tau_syn=2.0))
    x = torch.rand(6, 2, 5, requires_grad=True)
    first = net(x).output.detach()
    modules = [*net.layers, net.output]
    assert all(m.state is not None for m in modules)
    net.detach_state()
    assert all(not m.state[0].requires_grad for m in [net.output])
    assert all(not m.state.v.requires_grad for m in net.layers)
    net.reset_state()
    assert all(m.state is None for m in modules)
    torch.testing.assert_close(net(x).output.detach(), first, rtol=0, atol=0)
    with pytest.raises(SnnkitError):
        net(torch.rand(6, 5, 5))  # stale state of batch 2
    net.reset_state()
    assert net(torch.rand(6, 5, 5)).output.shape == (6, 5, 3)


def test_lif_state_zeros_and_detach():
    like = torch.zeros(1, dtype=F64)
    s = LIFState.zeros(2, 3, False, like)
    assert s.i is None and s.v.shape == (2, 3) and s.v.dtype == F64
    s2 = LIFState.zeros(2, 3, True, like)
    assert s2.i is not None and s2.i.shape == (2, 3)
    assert s2.i.data_ptr() != s2.v.data_ptr() != s2.a.data_ptr()
