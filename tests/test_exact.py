"""Tests for the exact-events oracle (snnkit.reference.exact) and its finite differences.

Every reference value is derived independently of the code under test: by hand (closed-form
single-neuron spike time and its derivative), by a brute-force RK4 time-stepping simulation,
by Gauss-Legendre quadrature and dense sampling of a superposition written here, and by
central finite differences.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.reference.exact import (
    ExactLayer,
    ExactNeuron,
    Kernel,
    lambert_w0,
    simulate,
)
from snnkit.reference.finite_differences import central_differences, critical_points

F64 = torch.float64


def _single(weight: torch.Tensor, neuron: ExactNeuron, duration: float = 50.0, times=(0.0,)):
    """One neuron fed by one input channel spiking at ``times``."""
    inputs = Events(torch.tensor([[list(times)]], dtype=F64), duration)
    return simulate([ExactLayer(weight.reshape(1, 1))], neuron, inputs), inputs


# ---- 1. analytic single neuron ----------------------------------------------------------------


def test_single_neuron_matches_hand_derivation():
    # tau_m = 2 tau_s, one input of weight w at t = 0: I = w e^{-t/tau_s}, and with
    # z = e^{-t/tau_m}: V = w (z - z^2) (since A = w tau_s/(tau_s - tau_m) = -w).
    # V = theta <=> z^2 - z + theta/w = 0; the first crossing is the larger root
    #   z* = (1 + sqrt(D))/2, D = 1 - 4 theta/w,  t* = -tau_m ln z*,
    #   dz*/dw = theta/(w^2 sqrt(D)),  dt*/dw = -tau_m theta / (z* w^2 sqrt(D)).
    tau_m, tau_s, theta, w = 10.0, 5.0, 1.0, 5.0
    D = 1.0 - 4.0 * theta / w
    z = (1.0 + math.sqrt(D)) / 2.0
    t_star = -tau_m * math.log(z)
    dt_dw = -tau_m * theta / (z * w * w * math.sqrt(D))

    neuron = ExactNeuron(tau_m, tau_s, theta)
    weight = torch.tensor([w], dtype=F64, requires_grad=True)
    result, _ = _single(weight, neuron)
    times = result.spikes[0].times
    assert times.shape == (1, 1, 1)
    assert abs(float(times[0, 0, 0].detach()) - t_star) < 1e-12
    # I just before the spike is w e^{-t*/tau_s} = w z*^2
    assert abs(float(result.currents_at_spikes[0][0, 0, 0].detach()) - w * z * z) < 1e-12

    (grad,) = torch.autograd.grad(times[0, 0, 0], weight)
    assert abs(float(grad) - dt_dw) < 1e-10

    cache = {}

    def loss_fn():
        cache["r"], _ = _single(weight, neuron)
        return cache["r"].spikes[0].times[0, 0, 0]

    fd = central_differences(loss_fn, [weight], spike_counts=lambda: cache["r"].spike_counts())
    assert not fd.refused[0].any()
    assert abs(float(fd.grads[0]) - dt_dw) < 1e-8
    assert weight.item() == w  # restored exactly


# ---- 2. closed forms against the root finder -------------------------------------------------


@pytest.mark.parametrize("taus", [(10.0, 5.0), (4.0, 2.0), (6.0, 6.0), (3.0, 3.0)])
def test_closed_forms_agree_with_root_finder(taus):
    kernel = Kernel(*taus)
    assert kernel.has_closed_form
    rng = random.Random(1)
    checked = 0
    for _ in range(3000):
        v0, i0, window = rng.uniform(-2, 0.99), rng.uniform(-1, 8), rng.uniform(0.1, 30)
        closed = kernel.first_crossing(v0, i0, 1.0, window, method="closed")
        bracket = kernel.first_crossing(v0, i0, 1.0, window, method="bracket")
        if bracket is not None and (bracket < 0.05 or kernel.slope(v0, i0, bracket) < 0.01):
            continue  # tiny or grazing crossings are ill-conditioned for both
        assert (closed is None) == (bracket is None), (v0, i0, window, closed, bracket)
        if closed is not None:
            assert abs(closed - bracket) <= 1e-13 * bracket, (v0, i0, closed, bracket)
            checked += 1
    assert checked > 300


def test_lambert_w0():
    for x in [-1 / math.e, -0.3678, -0.3, -0.1, -1e-6, 1e-3, 0.5, 1.0, 10.0, 1e4]:
        w = lambert_w0(x)
        assert w >= -1.0
        assert abs(w * math.exp(w) - x) <= 1e-15 * max(1.0, abs(x)) + 1e-9 * (x < -0.3678)


def test_root_finder_general_taus():
    kernel, theta = Kernel(10.0, 3.0), 1.0
    assert not kernel.has_closed_form
    rng = random.Random(2)
    found = 0
    for _ in range(2000):
        v0, i0, window = rng.uniform(-2, 0.99), rng.uniform(-1, 8), rng.uniform(0.1, 30)
        s = kernel.first_crossing(v0, i0, theta, window)
        grid = torch.linspace(0.0, window, 2001, dtype=F64)
        v = kernel.voltage(v0, i0, grid).numpy()
        grid = grid.numpy()
        if s is None:
            assert (v < theta + 1e-12).all()
            continue
        found += 1
        assert 0.0 < s <= window
        assert abs(kernel.voltage(v0, i0, s) - theta) < 1e-12
        assert kernel.voltage(v0, i0, s - 1e-9 * max(s, 1.0)) < theta
        assert (v[grid < s * (1 - 1e-9)] < theta).all()  # it is the first crossing
    assert found > 300


# ---- 3. brute-force time stepping -------------------------------------------------------------


def _rk4_network(inputs, layers, neuron, duration, dt=1e-4):
    """Classical RK4 of the ODE on a grid; jumps applied at the first grid point at/after them.

    For the linear ODE y' = M y (y = (V, I) per neuron) one RK4 step is exactly
    y <- (1 + hM + (hM)^2/2 + (hM)^3/6 + (hM)^4/24) y. Threshold crossings are located by
    linear interpolation within the step. Returns per layer, per neuron, the spike times.
    """
    tm, ts, theta = neuron.tau_mem, neuron.tau_syn, neuron.threshold
    hM = dt * np.array([[-1 / tm, 1 / tm], [0.0, -1 / ts]])
    P = sum(np.linalg.matrix_power(hM, k) / math.factorial(k) for k in range(5))
    weights = [
        (lay.weight.numpy(), None if lay.recurrent_weight is None else lay.recurrent_weight.numpy())
        for lay in layers
    ]
    sizes = [w.shape[0] for w, _ in weights]
    V = [np.zeros(n) for n in sizes]
    I = [np.zeros(n) for n in sizes]
    pending: dict[int, list[tuple[int, int]]] = {}  # step -> [(layer receiving, source)]

    def schedule(t, layer, source):
        pending.setdefault(math.ceil(t / dt - 1e-9), []).append((layer, source))

    for j, channel in enumerate(inputs):
        for t in channel:
            schedule(t, 0, j)
    spikes = [[[] for _ in range(n)] for n in sizes]
    steps = math.ceil(duration / dt)
    for step in range(steps):
        for layer, source in pending.pop(step, []):
            if layer < 0:  # recurrent arrival into layer -layer-1
                lay = -layer - 1
                I[lay] += weights[lay][1][:, source]
            else:
                I[layer] += weights[layer][0][:, source]
        for lay in range(len(sizes)):
            v_old = V[lay]
            V[lay] = P[0, 0] * v_old + P[0, 1] * I[lay]
            I[lay] = P[1, 1] * I[lay]
            for n in np.nonzero(V[lay] >= theta)[0]:
                t = dt * (step + (theta - v_old[n]) / (V[lay][n] - v_old[n]))
                spikes[lay][n].append(t)
                V[lay][n] = V[lay][n] - theta if neuron.reset == "subtract" else neuron.v_reset
                if weights[lay][1] is not None:
                    schedule(t, -lay - 1, n)
                if lay + 1 < len(sizes):
                    schedule(t, lay + 1, n)
    return spikes


@pytest.mark.parametrize(
    "neuron",
    [
        ExactNeuron(tau_mem=5.0, tau_syn=3.0, threshold=1.0, reset="zero", v_reset=-0.2),
        ExactNeuron(tau_mem=4.0, tau_syn=2.0, threshold=1.0, reset="subtract"),
    ],
    ids=["zero", "subtract"],
)
def test_matches_brute_force_time_stepping(neuron):
    g = torch.Generator().manual_seed(3)
    inputs = [[0.5, 3.0, 7.5], [1.0, 1.2, 6.0], [2.0, 9.0]]
    w1 = torch.rand(4, 3, generator=g, dtype=F64) * 3.0 + 0.5
    r1 = torch.randn(4, 4, generator=g, dtype=F64) * 0.5
    w2 = torch.rand(3, 4, generator=g, dtype=F64) * 2.0
    layers = [ExactLayer(w1, r1), ExactLayer(w2)]
    duration = 12.0
    result = simulate(layers, neuron, Events.from_lists([inputs], duration, dtype=F64))
    reference = _rk4_network(inputs, layers, neuron, duration)
    total = 0
    for events, ref in zip(result.spikes, reference, strict=True):
        for n, ref_times in enumerate(ref):
            exact = events.times[0, n][torch.isfinite(events.times[0, n])].tolist()
            assert len(exact) == len(ref_times), (n, exact, ref_times)
            assert np.allclose(exact, ref_times, atol=1e-3, rtol=0)
            total += len(exact)
    assert total >= 8 and max(len(t) for t in reference[0]) >= 2


# ---- 4. autograd against finite differences --------------------------------------------------


def _draw(seed: int):
    g = torch.Generator().manual_seed(seed)
    B, n_in, n1, n2, C, duration = 2, 3, 4, 3, 2, 20.0
    times = (torch.rand(B, n_in, 3, generator=g, dtype=F64) * 15.0).sort(-1).values
    w1 = (torch.randn(n1, n_in, generator=g, dtype=F64) + 1.0) * 1.5
    r1 = torch.randn(n1, n1, generator=g, dtype=F64) * 0.5
    w2 = torch.randn(n2, n1, generator=g, dtype=F64) + 0.5
    wr = torch.randn(C, n2, generator=g, dtype=F64)
    coeffs = [torch.randn(B, n, 64, generator=g, dtype=F64) for n in (n1, n2)]
    return times, [w1, r1, w2, wr], coeffs, duration


CASES = {  # seeds drawn until critical_points came back empty with multi-spike layers
    "zero": (ExactNeuron(10.0, 5.0, 1.0, reset="zero", v_reset=-0.2), 2),
    "subtract": (ExactNeuron(6.0, 4.0, 1.0, reset="subtract"), 2),
}


def _network_loss(seed: int, neuron: ExactNeuron):
    times, params, coeffs, duration = _draw(seed)
    for p in params:
        p.requires_grad_(True)
    times.requires_grad_(True)
    w1, r1, w2, wr = params
    cache = {}

    def loss_fn():
        inputs = Events(times, duration)
        res = simulate(
            [ExactLayer(w1, r1), ExactLayer(w2)],
            neuron,
            inputs,
            readout=ExactLayer(wr),
            readout_neuron=(8.0, 3.0),
        )
        cache["result"], cache["inputs"] = res, inputs
        loss = 0.0
        for c, events in zip(coeffs, res.spikes, strict=True):
            t = events.times
            loss = loss + (torch.where(torch.isfinite(t), t, 0.0) * c[..., : t.shape[2]]).sum()
        ro = res.readout
        weights = torch.tensor([0.3, -0.7], dtype=F64)
        loss = loss + (ro.integral() * weights).sum() + ro.integral_exp().sum()
        return loss + ro.mean().sum() + ro.maximum().sum()

    return loss_fn, params + [times], cache, duration


@pytest.mark.parametrize("reset", list(CASES))
def test_autograd_matches_finite_differences(reset):
    neuron, seed = CASES[reset]
    loss_fn, params, cache, duration = _network_loss(seed, neuron)
    loss = loss_fn()
    result = cache["result"]
    assert critical_points(result, cache["inputs"], neuron, duration) == []
    counts = [events.counts() for events in result.spikes]
    assert all(int(c.max()) >= 2 for c in counts)  # multi-spike in both hidden layers
    grads = torch.autograd.grad(loss, params)
    fd = central_differences(loss_fn, params, spike_counts=lambda: cache["result"].spike_counts())
    refused = sum(int(r.sum()) for r in fd.refused)
    assert refused <= 0.1 * sum(p.numel() for p in params)
    for g, f, r in zip(grads, fd.grads, fd.refused, strict=True):
        ok = ~r
        scale = float(f[ok].abs().max())
        # relative 1e-6, with a floor at 1e-6 of the tensor's largest entry (FD noise ~1e-8)
        assert torch.allclose(g[ok], f[ok], rtol=1e-6, atol=1e-6 * scale), (g, f)


def test_finite_differences_refuse_spike_count_changes():
    # peak V = w/4 sits 2.5e-8 below theta: +h makes the neuron spike, -h does not
    neuron = ExactNeuron(10.0, 5.0, 1.0)
    weight = torch.tensor([4.0 * (1.0 - 1e-8)], dtype=F64)
    readout = torch.tensor([[1.0]], dtype=F64)
    cache = {}

    def loss_fn():
        inputs = Events(torch.tensor([[[0.0]]], dtype=F64), 50.0)
        layer = ExactLayer(weight.reshape(1, 1))
        cache["r"] = simulate([layer], neuron, inputs, readout=ExactLayer(readout))
        return cache["r"].readout.integral().sum()

    fd = central_differences(
        loss_fn, [weight, readout], spike_counts=lambda: cache["r"].spike_counts()
    )
    assert fd.refused[0].all() and torch.isnan(fd.grads[0]).all()
    assert not fd.refused[1].any() and float(fd.grads[1]) == 0.0  # no spike reaches it


def test_input_time_gradient_flows():
    neuron = ExactNeuron(10.0, 5.0)
    times = torch.tensor([[[1.0]]], dtype=F64, requires_grad=True)
    res = simulate([ExactLayer(torch.tensor([[5.0]], dtype=F64))], neuron, Events(times, 30.0))
    (g,) = torch.autograd.grad(res.spikes[0].times[0, 0, 0], times)
    assert abs(float(g) - 1.0) < 1e-12  # a lone input shifts its output spike rigidly


# ---- 5. LI readout ----------------------------------------------------------------------------


def _superposition(t, arrivals, weights, tau_m, tau_s):
    """V(t) [C, M] = sum_j w_j K(t - t_j), K the response to a unit current jump (written here)."""
    s = t[None, :] - arrivals[:, None]
    sp = np.clip(s, 0.0, None)
    if tau_m == tau_s:
        k = sp / tau_m * np.exp(-sp / tau_m)
    else:
        k = tau_s / (tau_s - tau_m) * (np.exp(-sp / tau_s) - np.exp(-sp / tau_m))
    return weights.T @ np.where(s >= 0, k, 0.0)


@pytest.mark.parametrize("taus", [(8.0, 3.0), (5.0, 5.0)])
def test_li_readout_against_quadrature(taus):
    duration = 20.0
    g = torch.Generator().manual_seed(5)
    times = (torch.rand(1, 4, 3, generator=g, dtype=F64) * duration).sort(-1).values
    weight = torch.randn(3, 4, generator=g, dtype=F64)
    res = simulate(
        [], ExactNeuron(), Events(times, duration), readout=ExactLayer(weight), readout_neuron=taus
    )
    ro = res.readout
    flat = times[0].reshape(-1).numpy()
    source = np.repeat(np.arange(4), 3)
    arrivals, jumps = flat, weight.numpy()[:, source].T  # [E], [E, C]

    def v(t):
        return _superposition(np.asarray(t, dtype=float), arrivals, jumps, *taus)

    probe = np.concatenate([np.linspace(0, duration, 37), flat])
    assert np.allclose(ro.voltage(torch.tensor(probe))[0].numpy(), v(probe), atol=1e-12)

    nodes, w_gl = np.polynomial.legendre.leggauss(30)
    edges = np.unique(np.concatenate([[0.0, duration], flat]))
    integral = np.zeros(3)
    integral_exp = np.zeros(3)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        t = (b - a) / 2 * nodes + (a + b) / 2
        vals = v(t)
        integral += (b - a) / 2 * vals @ w_gl
        integral_exp += (b - a) / 2 * (vals * np.exp(-t / duration)) @ w_gl
    assert np.allclose(ro.integral()[0].numpy(), integral, rtol=1e-7, atol=1e-10)
    assert np.allclose(ro.integral_exp()[0].numpy(), integral_exp, rtol=1e-7, atol=1e-10)
    assert np.allclose(ro.mean()[0].numpy(), integral / duration, rtol=1e-7, atol=1e-10)

    dense = v(np.concatenate([np.linspace(0, duration, 200_001), flat])).max(axis=1)
    exact = ro.maximum()[0].numpy()
    assert (exact >= dense - 1e-12).all() and (exact <= dense + 1e-7).all()


# ---- 6. errors and the criticality screen -----------------------------------------------------


def test_max_spikes_exceeded_raises():
    neuron = ExactNeuron(10.0, 5.0)
    with pytest.raises(SnnkitError, match=r"layer 0 .*max_spikes=2"):
        simulate(
            [ExactLayer(torch.tensor([[40.0]], dtype=F64))],
            neuron,
            Events(torch.tensor([[[0.0]]], dtype=F64), 50.0),
            max_spikes=2,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau_mem": 0.0},
        {"tau_syn": -1.0},
        {"tau_mem": math.inf},
        {"threshold": 0.0},
        {"reset": "hard"},
        {"v_reset": 1.0},
    ],
)
def test_bad_neuron_parameters_raise(kwargs):
    with pytest.raises(SnnkitError):
        ExactNeuron(**kwargs)


def test_critical_points_flags_near_misses_and_edges():
    neuron = ExactNeuron(10.0, 5.0, 1.0)  # one jump w at t=0 peaks at V = w/4
    clean, inputs = _single(torch.tensor([6.0], dtype=F64), neuron)
    assert critical_points(clean, inputs, neuron, 50.0) == []

    near_miss, inputs = _single(torch.tensor([4.0 * (1.0 - 1e-5)], dtype=F64), neuron)
    assert near_miss.spike_counts().sum() == 0
    reasons = critical_points(near_miss, inputs, neuron, 50.0)
    assert len(reasons) == 1 and "near miss" in reasons[0]

    grazing, inputs = _single(torch.tensor([4.0 * (1.0 + 1e-8)], dtype=F64), neuron)
    assert grazing.spike_counts().sum() == 1
    assert any("grazing" in r for r in critical_points(grazing, inputs, neuron, 50.0))

    t_spike = float(clean.spikes[0].times[0, 0, 0])
    late, inputs = _single(torch.tensor([6.0], dtype=F64), neuron, duration=t_spike + 5e-4)
    assert late.spike_counts().sum() == 1
    assert any("duration" in r for r in critical_points(late, inputs, neuron, t_spike + 5e-4))

    coincident = simulate(
        [ExactLayer(torch.tensor([[6.0, 0.1]], dtype=F64))],
        neuron,
        inputs := Events.from_lists([[[0.0], [t_spike + 1e-4]]], 50.0, dtype=F64),
    )
    assert any("near-coincident" in r for r in critical_points(coincident, inputs, neuron, 50.0))
