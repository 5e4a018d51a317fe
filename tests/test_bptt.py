"""Tests for the BPTT oracle (snnkit.reference.bptt), checked independently of itself.

Forward values are written by hand from the equations of docs/neurons.md (dyadic numbers,
so float64 results are exact); gradients are checked against a hand derivation, against
forward mode (``torch.func.jvp``) and against central finite differences.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call, jvp

from snnkit.errors import SnnkitError
from snnkit.neurons import IF, LI, LIF, LIFCoefficients, LIFState, fire
from snnkit.reference.bptt import (
    BPTT,
    BPTTNeuron,
    DetachedResetBPTT,
    SpikeFunction,
    SurrogateSpike,
    run_steps,
    spike,
)
from snnkit.surrogates import Exponential, FastSigmoid, Surrogate

F64 = torch.float64


def lif_loop(
    current,
    state,
    *,
    alpha,
    beta,
    theta,
    reset_amount,
    neuron,
    surrogate,
    reset_grad="through",
    recurrent_weight=None,
):
    """The oracle's step loop on LIF: (spikes, pre-reset membrane, final state)."""
    spike_fn = SurrogateSpike(surrogate, reset_grad)
    c = LIFCoefficients(alpha, beta, theta, reset_amount)
    spikes, state = run_steps(neuron, c, state, current, spike_fn, recurrent_weight)
    return spikes, torch.stack(spike_fn.membrane), state


def bptt_layer(neuron, n_in, n_out, **options):
    """A Dense + BPTT-neurons layer (reset gradient through unless reset_grad says)."""
    return BPTT().layer(neuron, n_in, n_out, **options)


def s_exp(v: float, theta: float = 1.0, width: float = 0.5, scale: float = 1.0) -> float:
    """The exponential surrogate, written out: c/(theta*w) * exp(-|v-theta|/(theta*w))."""
    tw = theta * width
    return scale / tw * math.exp(-abs(v - theta) / tw)


def run_loop(
    x,
    *,
    alpha: float = 0.5,
    beta: float | None = None,
    theta: float = 1.0,
    m: float | None = None,
    neuron: LIF | None = None,
    w_rec=None,
    reset_grad: str = "through",
    requires_grad: bool = False,
):
    """lif_loop on one sample: x is [T] (one neuron) or [T][N]; returns (x, spikes, v, state)."""
    xt = torch.tensor(x, dtype=F64)
    if xt.ndim == 1:
        xt = xt[:, None]
    xt = xt[:, None, :].clone().requires_grad_(requires_grad)  # [T, 1, N]
    n = xt.shape[-1]
    full = lambda value: torch.full((n,), value, dtype=F64)  # noqa: E731
    spikes, v, state = lif_loop(
        xt,
        LIFState.zeros(1, n, beta is not None, xt),
        alpha=full(alpha),
        beta=None if beta is None else full(beta),
        theta=full(theta),
        reset_amount=full(theta if m is None else m),
        neuron=neuron if neuron is not None else LIF(),
        surrogate=Exponential(),
        reset_grad=reset_grad,
        recurrent_weight=None if w_rec is None else torch.tensor(w_rec, dtype=F64),
    )
    return xt, spikes, v, state


def assert_exact(actual: torch.Tensor, expected) -> None:
    expected = torch.tensor(expected, dtype=F64).reshape(actual.shape)
    torch.testing.assert_close(actual.detach(), expected, rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------
# 1. hand-computed forward passes (alpha = 0.5, theta = 1)
# ---------------------------------------------------------------------------------------


def test_forward_subtract_reset_by_hand():
    # v_t = 0.5 * vpost_{t-1} + x_t; spike when v >= 1 (v1 == 1 exactly spikes); vpost = v - a
    _, a, v, state = run_loop([0.5, 0.75, 0.25, 1.5, 0.5])
    assert_exact(v, [0.5, 1.0, 0.25, 1.625, 0.8125])
    assert_exact(a, [0, 1, 0, 1, 0])
    assert_exact(state.v, [0.8125])
    assert_exact(state.a, [0])


def test_final_state_has_no_current_without_synapse():
    _, _, _, state = run_loop([0.5, 0.75])
    assert state.i is None


def test_forward_zero_reset_by_hand():
    _, a, v, state = run_loop([0.5, 0.75, 0.25, 1.5, 0.5], neuron=LIF(reset="zero"))
    assert_exact(v, [0.5, 1.0, 0.25, 1.625, 0.5])
    assert_exact(a, [0, 1, 0, 1, 0])
    assert_exact(state.v, [0.5])


def test_forward_fixed_subtract_amount_by_hand():
    # m = 0.5 instead of theta: the membrane keeps half after a spike
    _, a, v, state = run_loop([0.5, 0.75, 0.25, 1.5, 0.5], m=0.5)
    assert_exact(v, [0.5, 1.0, 0.5, 1.75, 1.125])
    assert_exact(a, [0, 1, 0, 1, 1])
    assert_exact(state.v, [0.625])
    assert_exact(state.a, [1])


def test_forward_synaptic_current_by_hand():
    # i_t = 0.5 i_{t-1} + x_t ; v_t = 0.5 vpost_{t-1} + i_t
    _, a, v, state = run_loop([0.5, 0.5, 0.0, 0.0, 1.0], beta=0.5)
    assert_exact(v, [0.5, 1.0, 0.375, 0.375, 1.28125])
    assert_exact(a, [0, 0 + 1, 0, 0, 1])
    assert_exact(state.v, [0.28125])
    assert_exact(state.i, [1.09375])
    assert_exact(state.a, [1])


def test_forward_integrate_and_fire_by_hand():
    _, a, v, state = run_loop([0.5, 0.5, 0.5, 0.25, 0.75], alpha=1.0, neuron=IF())
    assert_exact(v, [0.5, 1.0, 0.5, 0.75, 1.5])
    assert_exact(a, [0, 1, 0, 0, 1])
    assert_exact(state.v, [0.5])


def test_forward_multi_spike_by_hand():
    x = [2.5, 0.25, 3.0, 0.5, 0.0]
    _, a, v, state = run_loop(x, neuron=LIF(multi_spike=True))
    assert_exact(v, [2.5, 0.5, 3.25, 0.625, 0.3125])
    assert_exact(a, [2, 0, 3, 0, 0])
    assert_exact(state.v, [0.3125])

    _, a, v, state = run_loop(x, neuron=LIF(multi_spike=True, max_spikes=2))
    assert_exact(v, [2.5, 0.5, 3.25, 1.125, 0.0625])
    assert_exact(a, [2, 0, 2, 1, 0])
    assert_exact(state.v, [0.0625])


def test_forward_recurrent_two_neurons_by_hand():
    # recurrent input to neuron i at step t: sum_j W[i, j] a_j(t-1)
    w_rec = [[0.0, 0.5], [-0.25, 0.0]]
    x = [[1.0, 0.0], [0.0, 1.25], [0.75, 0.0], [0.0, 0.0]]
    _, a, v, state = run_loop(x, w_rec=w_rec)
    assert_exact(v, [[1.0, 0.0], [0.0, 1.0], [1.25, 0.0], [0.125, -0.25]])
    assert_exact(a, [[1, 0], [0, 1], [1, 0], [0, 0]])
    assert_exact(state.v, [[0.125, -0.25]])
    assert_exact(state.a, [[0, 0]])
    # without the recurrent weights neuron 0 never reaches the threshold at t = 2
    _, a_ff, _, _ = run_loop(x)
    assert_exact(a_ff, [[1, 0], [0, 1], [0, 0], [0, 0]])


def test_heaviside_spikes_threshold_is_inclusive():
    v = torch.tensor([0.999, 1.0, 1.5, 2.0, 7.5], dtype=F64)
    theta = torch.ones(5, dtype=F64)
    assert fire(v, theta, None, False).tolist() == [0, 1, 1, 1, 1]
    assert fire(v, theta, None, True).tolist() == [0, 1, 1, 2, 7]
    assert fire(v, theta, 3, True).tolist() == [0, 1, 1, 2, 3]
    assert fire(v, 2 * theta, None, True).tolist() == [0, 0, 0, 1, 3]


# ---------------------------------------------------------------------------------------
# 2. hand-derived gradient (T = 3, one neuron, exponential surrogate w = 0.5)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_gradient_by_hand(reset):
    # x = [0.75, 0.75, 0.5]: v0 = 0.75 (no spike), v1 = 1.125 (spike), then
    # subtract: vpost1 = 0.125, v2 = 0.5625;  zero: vpost1 = 0, v2 = 0.5.
    # L = 1*a0 + 2*a1 + 3*a2.  With s_t = s(v_t) and r_t = d vpost_t / d v_t:
    #   dL/dx2 = 3 s2,  dL/dx1 = 2 s1 + alpha r1 dL/dx2,  dL/dx0 = 1 s0 + alpha r0 dL/dx1
    # r_t (subtract, m = 1): through 1 - s_t, detached 1
    # r_t (zero):            through (1 - a_t) - v_t s_t, detached 1 - a_t
    alpha = 0.5
    v = [0.75, 1.125, 0.5625 if reset == "subtract" else 0.5]
    a = [0.0, 1.0, 0.0]
    s = [s_exp(vt) for vt in v]
    c = [1.0, 2.0, 3.0]
    grads = {}
    for mode in ("through", "detached"):
        if reset == "subtract":
            r = [1 - s[t] if mode == "through" else 1.0 for t in range(3)]
        else:
            r = [(1 - a[t]) - (v[t] * s[t] if mode == "through" else 0.0) for t in range(3)]
        g2 = c[2] * s[2]
        g1 = c[1] * s[1] + alpha * r[1] * g2
        g0 = c[0] * s[0] + alpha * r[0] * g1
        expected = torch.tensor([g0, g1, g2], dtype=F64)

        x, spikes, vm, _ = run_loop(
            [0.75, 0.75, 0.5], neuron=LIF(reset=reset), reset_grad=mode, requires_grad=True
        )
        assert_exact(vm, v)
        assert_exact(spikes, a)
        loss = (spikes.flatten() * torch.tensor(c, dtype=F64)).sum()
        (grad,) = torch.autograd.grad(loss, x)
        torch.testing.assert_close(grad.flatten(), expected, rtol=1e-12, atol=1e-12)
        grads[mode] = grad.flatten()
    # the reset path matters: both dL/dx0 and dL/dx1 change (x2 has no later reset)
    assert abs(grads["through"][0] - grads["detached"][0]) > 0.1
    assert abs(grads["through"][1] - grads["detached"][1]) > 0.01
    assert grads["through"][2] == grads["detached"][2]


def test_gradient_by_hand_synaptic_and_threshold():
    # with tau_syn (beta = 0.5), reset detached, L = a1; x = [0.5, 0.5]:
    # i = [0.5, 0.75], v = [0.5, 1.0] -> a1 = 1 (v1 == theta); dL/dv1 = s(1) = 2
    # v1 = 0.5 * v0 + i1, i1 = 0.5 i0 + x1, i0 = x0 -> dv1/dx1 = 1, dv1/dx0 = 0.5 + 0.5 = 1
    # (reset detached and a0 = 0 so vpost0 = v0)
    theta = torch.ones(1, dtype=F64, requires_grad=True)
    x = torch.tensor([0.5, 0.5], dtype=F64).reshape(2, 1, 1).requires_grad_(True)
    spikes, v, _ = lif_loop(
        x,
        LIFState.zeros(1, 1, True, x),
        alpha=torch.full((1,), 0.5, dtype=F64),
        beta=torch.full((1,), 0.5, dtype=F64),
        theta=theta,
        reset_amount=torch.ones(1, dtype=F64),
        neuron=LIF(),
        surrogate=Exponential(),
        reset_grad="detached",
    )
    assert_exact(v, [0.5, 1.0])
    assert_exact(spikes, [0, 1])
    gx, gtheta = torch.autograd.grad(spikes[1].sum(), (x, theta))
    torch.testing.assert_close(gx.flatten(), torch.full((2,), 2.0, dtype=F64), rtol=0, atol=1e-15)
    # d a1 / d theta = -s(v1) (the spike function) ; theta also enters s but not the forward
    torch.testing.assert_close(gtheta, torch.tensor([-2.0], dtype=F64), rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------
# 3. forward mode (jvp) against reverse mode
# ---------------------------------------------------------------------------------------

JVP_CASES = [
    # (T, B, n_in, n_out, neuron, recurrent, train, reset_grad)
    (6, 2, 3, 4, LIF(tau_mem=5.0), False, False, "through"),
    (9, 3, 4, 5, LIF(tau_mem=8.0, tau_syn=3.0), False, True, "through"),
    (9, 3, 4, 5, LIF(tau_mem=8.0, tau_syn=3.0), False, True, "detached"),
    (12, 2, 3, 6, LIF(tau_mem=6.0), True, True, "through"),
    (12, 2, 3, 6, LIF(tau_mem=6.0, tau_syn=2.0), True, True, "detached"),
    (8, 4, 2, 3, LIF(tau_mem=4.0, reset="zero"), True, True, "through"),
    (7, 2, 3, 4, LIF(tau_mem=4.0, multi_spike=True, subtract=0.5), True, False, "through"),
    (10, 2, 3, 3, IF(), True, False, "detached"),
]


@pytest.mark.parametrize("case", JVP_CASES, ids=[f"case{k}" for k in range(len(JVP_CASES))])
def test_jvp_matches_reverse_mode(case):
    steps, batch, n_in, n_out, neuron, recurrent, train, reset_grad = case
    torch.manual_seed(sum(case[:4]))
    layer = bptt_layer(
        neuron,
        n_in,
        n_out,
        recurrent=recurrent,
        train_tau=train,
        train_threshold=train,
        weight_gain=3.0,
        reset_grad=reset_grad,
    ).to(F64)
    if recurrent:
        with torch.no_grad():
            layer.recurrent_weight.normal_(0.0, 0.5)
    x = torch.rand(steps, batch, n_in, dtype=F64) * 1.5
    c_spk = torch.randn(steps, batch, n_out, dtype=F64)
    c_mem = torch.randn(steps, batch, n_out, dtype=F64)
    params = {k: p.detach() for k, p in layer.named_parameters()}
    if train:
        assert {"neurons.params.tau_mem", "neurons.params.threshold"} <= set(params)
    if recurrent:
        assert "neurons.recurrent_weight" in params

    def loss_fn(p, inp):
        layer.reset_state()
        spikes = functional_call(layer, p, (inp,))
        return (spikes * c_spk).sum() + (layer.neurons.last_membrane * c_mem).sum()

    with torch.no_grad():
        spikes = functional_call(layer, params, (x,))
    assert (spikes > 0).any() and (spikes == 0).any()  # the case exercises spikes and resets

    p_dot = {k: torch.randn_like(v) for k, v in params.items()}
    x_dot = torch.randn_like(x)
    _, directional = jvp(loss_fn, (params, x), (p_dot, x_dot))

    p_req = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    x_req = x.clone().requires_grad_(True)
    loss = loss_fn(p_req, x_req)
    names = sorted(p_req)
    grads = torch.autograd.grad(loss, [p_req[k] for k in names] + [x_req])
    reverse = sum((g * p_dot[k]).sum() for g, k in zip(grads, names, strict=False))
    reverse = reverse + (grads[-1] * x_dot).sum()
    layer.reset_state()
    torch.testing.assert_close(directional, reverse, rtol=1e-10, atol=1e-12)
    assert abs(float(reverse)) > 1e-3


def test_jvp_and_backward_see_surrogate_in_spike_function():
    # the spike function alone: jvp along (v_dot, theta_dot) is s*(v_dot - theta_dot)
    torch.manual_seed(0)
    v = torch.randn(3, 4, dtype=F64) + 1.0
    theta = torch.rand(4, dtype=F64) + 0.5
    v_dot, theta_dot = torch.randn_like(v), torch.randn_like(theta)
    sur = Exponential(width=0.3, scale=2.0)
    out, tangent = jvp(lambda a, b: spike(a, b, sur), (v, theta), (v_dot, theta_dot))
    expected = torch.tensor(
        [[s_exp(float(v[b, n]), float(theta[n]), 0.3, 2.0) for n in range(4)] for b in range(3)],
        dtype=F64,
    )
    torch.testing.assert_close(tangent, expected * (v_dot - theta_dot), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(out, (v >= theta).to(F64), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------
# 4. finite differences on the smooth (linear) part of the loop
# ---------------------------------------------------------------------------------------


def _membrane(layer, x):
    layer.reset_state()
    spikes = layer(x)
    return spikes, layer.neurons.last_membrane


def _fd_case(neuron, reset_grad):
    torch.manual_seed(3)
    layer = bptt_layer(neuron, 3, 5, train_tau=True, weight_gain=2.5, reset_grad=reset_grad)
    layer = layer.to(F64)
    x = torch.rand(10, 2, 3, dtype=F64)
    spikes, _ = _membrane(layer, x)
    assert spikes.sum() > 3
    x_req = x.clone().requires_grad_(True)
    coef = torch.randn(spikes.shape, dtype=F64)
    return layer, x, x_req, spikes, coef


def _finite_differences(layer, x, spikes, coef, h=1e-6):
    """Central differences of sum(coef * membrane) in x and tau_mem, spikes held fixed."""

    def q(inp):
        s, v = _membrane(layer, inp)
        assert torch.equal(s, spikes)  # +-h does not move any spike
        return (v * coef).sum()

    fd_x = torch.zeros_like(x)
    tau = layer.params.tau_mem
    fd_tau = torch.zeros_like(tau)
    with torch.no_grad():
        for idx in range(x.numel()):
            e = torch.zeros(x.numel(), dtype=F64)
            e[idx] = h
            e = e.reshape(x.shape)
            fd_x.view(-1)[idx] = (q(x + e) - q(x - e)) / (2 * h)
        tau0 = tau.detach().clone()
        for n in range(tau0.numel()):
            for sign in (1, -1):
                tau.copy_(tau0)
                tau[n] += sign * h
                fd_tau[n] += sign * q(x) / (2 * h)
        tau.copy_(tau0)
    return fd_x, fd_tau


@pytest.mark.parametrize(
    "neuron",
    [LIF(tau_mem=5.0), LIF(tau_mem=5.0, tau_syn=2.0), LIF(tau_mem=5.0, reset="zero")],
    ids=["subtract", "synaptic", "zero"],
)
def test_membrane_with_detached_reset_matches_finite_differences(neuron):
    # reset detached, no recurrence: with the spikes held fixed the membrane trace is a smooth
    # function of inputs and time constants, and autograd gives its exact derivative
    layer, x, x_req, spikes, coef = _fd_case(neuron, "detached")
    _, v = _membrane(layer, x_req)
    gx, gtau = torch.autograd.grad((v * coef).sum(), (x_req, layer.params.tau_mem))
    fd_x, fd_tau = _finite_differences(layer, x, spikes, coef)
    torch.testing.assert_close(gx, fd_x, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(gtau, fd_tau, rtol=1e-7, atol=1e-8)
    assert gx.abs().max() > 0.1 and gtau.abs().max() > 0.01


def test_membrane_before_first_spike_matches_finite_differences():
    # up to each neuron's first spike no reset has removed charge; with the reset detached the
    # membrane there is linear in the inputs. With the reset "through", the surrogate enters
    # the reset at earlier non-spiking steps too, so that gradient must differ.
    grads = {}
    for mode in ("detached", "through"):
        layer, x, x_req, spikes, coef = _fd_case(LIF(tau_mem=5.0, tau_syn=3.0), mode)
        fired_before = (spikes.cumsum(0) - spikes) > 0
        coef = coef * (~fired_before)
        assert fired_before.any() and not fired_before[0].any()
        _, v = _membrane(layer, x_req)
        grads[mode] = torch.autograd.grad((v * coef).sum(), x_req)[0]
    fd_x, _ = _finite_differences(layer, x, spikes, coef)
    torch.testing.assert_close(grads["detached"], fd_x, rtol=1e-7, atol=1e-8)
    assert (grads["through"] - fd_x).abs().max() > 1e-2


# ---------------------------------------------------------------------------------------
# 5. the spike function
# ---------------------------------------------------------------------------------------


def test_spike_function_gradients():
    torch.manual_seed(1)
    v = (torch.randn(4, 3, dtype=F64) + 1.0).requires_grad_(True)
    theta = (torch.rand(3, dtype=F64) + 0.5).requires_grad_(True)
    g = torch.randn(4, 3, dtype=F64)
    out = SpikeFunction.apply(v, theta, Exponential(), None, False)
    gv, gtheta = torch.autograd.grad((out * g).sum(), (v, theta))
    s = torch.tensor(
        [[s_exp(v[b, n].item(), theta[n].item()) for n in range(3)] for b in range(4)],
        dtype=F64,
    )
    torch.testing.assert_close(gv, g * s, rtol=1e-13, atol=0)
    assert gtheta.shape == theta.shape
    torch.testing.assert_close(gtheta, -(g * s).sum(0), rtol=1e-13, atol=1e-15)
    # multi-spike forward, same surrogate backward
    out_m = spike(v, theta, Exponential(), 2, True)
    (gv_m,) = torch.autograd.grad((out_m * g).sum(), v)
    torch.testing.assert_close(gv_m, g * s, rtol=1e-13, atol=0)


def test_spike_function_other_surrogate_and_no_theta_grad():
    v = torch.tensor([[0.5, 1.0, 1.25]], dtype=F64, requires_grad=True)
    theta = torch.ones(3, dtype=F64)
    (gv,) = torch.autograd.grad(spike(v, theta, FastSigmoid(slope=4.0)).sum(), v)
    expected = [1 / (1 + 4 * 0.5) ** 2, 1.0, 1 / (1 + 4 * 0.25) ** 2]
    torch.testing.assert_close(gv.flatten(), torch.tensor(expected, dtype=F64), rtol=1e-14, atol=0)


class RecordingSurrogate(Surrogate):
    """Exponential surrogate that records every membrane it is evaluated at."""

    name = "recording"

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, v, theta):
        self.seen.append(v.detach().clone())
        return Exponential()(v, theta)

    def cuda_body(self) -> str:  # pragma: no cover - not used
        return "T(0)"

    def describe(self) -> str:
        return "recording()"


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_surrogate_is_evaluated_at_pre_reset_membrane(reset):
    torch.manual_seed(2)
    sur = RecordingSurrogate()
    layer = bptt_layer(LIF(tau_mem=4.0, reset=reset), 2, 3, surrogate=sur, weight_gain=3.0)
    layer = layer.to(F64)
    x = torch.rand(6, 2, 2, dtype=F64).requires_grad_(True)
    spikes = layer(x)
    assert spikes.sum() > 0
    assert sur.seen == []  # nothing evaluated in the forward pass
    spikes.sum().backward()
    assert len(sur.seen) == 6
    seen = torch.stack(sur.seen[::-1])  # backward runs from the last step to the first
    torch.testing.assert_close(seen, layer.neurons.last_membrane.detach(), rtol=0, atol=0)
    # the pre-reset membrane is >= theta where spikes were emitted (post-reset would not be)
    assert bool((seen[spikes.bool()] >= 1.0).all())


# ---------------------------------------------------------------------------------------
# 6. the method objects
# ---------------------------------------------------------------------------------------


def test_bptt_supports_and_rejects_readout_neuron():
    assert BPTT().supports(LIF()) is None
    assert BPTT().supports(IF()) is None
    reason = BPTT().supports(LI())
    assert isinstance(reason, str) and reason
    with pytest.raises(SnnkitError):
        BPTT().layer(LI(), 2, 3)
    with pytest.raises(SnnkitError):
        DetachedResetBPTT().layer(LI(), 2, 3)
    with pytest.raises(SnnkitError):
        bptt_layer(LIF(), 2, 3, reset_grad="sideways")


def test_detached_reset_method_layer():
    torch.manual_seed(4)
    neuron = LIF(tau_mem=5.0)
    through = BPTT().layer(neuron, 3, 4, weight_gain=3.0).to(F64)
    detached = DetachedResetBPTT().layer(neuron, 3, 4, weight_gain=3.0).to(F64)
    manual = bptt_layer(neuron, 3, 4, reset_grad="detached").to(F64)
    assert isinstance(detached.neurons, BPTTNeuron) and detached.neurons.reset_grad == "detached"
    assert through.neurons.reset_grad == "through"
    detached.load_state_dict(through.state_dict())
    manual.load_state_dict(through.state_dict())
    x = torch.rand(10, 2, 3, dtype=F64)
    c = torch.randn(10, 2, 4, dtype=F64)

    def grad_of(layer):
        out = layer(x)
        return out, torch.autograd.grad((out * c).sum(), layer.weight)[0]

    s_t, g_t = grad_of(through)
    s_d, g_d = grad_of(detached)
    s_m, g_m = grad_of(manual)
    assert s_t.sum() > 0
    assert torch.equal(s_t, s_d) and torch.equal(s_d, s_m)
    torch.testing.assert_close(g_d, g_m, rtol=0, atol=0)
    assert (g_t - g_d).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------
# 7. float32 and float64
# ---------------------------------------------------------------------------------------


def test_float32_and_float64_agree():
    torch.manual_seed(5)
    layer32 = bptt_layer(LIF(tau_mem=10.0, tau_syn=5.0), 8, 16, recurrent=True, weight_gain=2.0)
    layer64 = bptt_layer(LIF(tau_mem=10.0, tau_syn=5.0), 8, 16, recurrent=True).to(F64)
    layer64.load_state_dict(layer32.state_dict())
    assert layer64.weight.dtype == F64 and layer64.params.tau_mem.dtype == F64
    x = torch.rand(30, 4, 8)
    x32 = x.clone().requires_grad_(True)
    x64 = x.to(F64).requires_grad_(True)
    s32, s64 = layer32(x32), layer64(x64)
    assert s32.dtype == torch.float32 and s64.dtype == F64
    assert s64.sum() > 20
    assert torch.equal(s32.to(F64), s64)
    v32, v64 = layer32.neurons.last_membrane.to(F64), layer64.neurons.last_membrane
    torch.testing.assert_close(v32, v64, rtol=1e-5, atol=1e-5)
    c = torch.randn(30, 4, 16)
    (g32,) = torch.autograd.grad((s32 * c).sum(), x32)
    (g64,) = torch.autograd.grad((s64 * c.to(F64)).sum(), x64)
    torch.testing.assert_close(g32.to(F64), g64, rtol=1e-4, atol=1e-5)
