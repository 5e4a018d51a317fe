"""Rouser plugin: conformance with BPTT (thresholds as leaves, both reset options), broken
implementations caught, per-layer sharing, the clamp, the surrogate, registration."""

from __future__ import annotations

import dataclasses
from importlib import metadata

import pytest
import torch
from fixtures.memory import saved_bytes
from snnkit_rouser import Rouser, RouserExponential, RouserNeuron, method, scan

from snnkit import IF, LI, LIF
from snnkit.conformance import case_names, check
from snnkit.conformance.raster import RASTER_CASES, run_raster_case
from snnkit.errors import SnnkitError
from snnkit.neurons import LIFCoefficients, LIFState
from snnkit.reference.bptt import BPTT, SurrogateSpike, run_steps
from snnkit.surrogates import Exponential


def _trained_cases(reset_grad: str):
    """Every raster case with the threshold a leaf of both networks, and the reset option."""
    extra = {"train_threshold": True, "reset_grad": reset_grad}
    return [
        dataclasses.replace(c, layer_options={**c.layer_options, **extra}) for c in RASTER_CASES
    ]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conformance_default_options(dtype):
    """`snnkit conformance --grad rouser`: every case passes against its declared oracle."""
    results = check(Rouser(), [dtype])
    assert len(results) == len(case_names(Rouser())) >= 16
    assert all(r.passed for r in results), [(r.case, r.detail) for r in results if not r.passed]
    if dtype == "float64":
        assert max(r.max_rel_err for r in results) <= 1e-10


@pytest.mark.parametrize("reset_grad", ["detached", "through"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conformance_trained_thresholds(reset_grad, dtype):
    """Weights and thresholds equal BPTT with the threshold as a leaf tensor, both reset
    options (the oracle takes the same reset_grad option), every case."""
    tol = 1e-10 if dtype == "float64" else 1e-4
    for case in _trained_cases(reset_grad):
        result = run_raster_case(Rouser(), case, dtype)
        assert result.passed and result.max_rel_err <= tol, (case.name, result.detail)


def test_the_two_reset_options_are_different_gradients():
    """Checked against the other reset option's oracle, the gradient fails: the option matters."""
    mislabelled = type("Mislabelled", (Rouser,), {"name": "x", "oracle": "bptt"})()
    case = dataclasses.replace(RASTER_CASES[0], layer_options={"train_threshold": True})
    assert run_raster_case(mislabelled, case).status == "failed"


# --- broken implementations: each must fail the suite -----------------------------------------


class _Broken:
    """A scan module whose reverse scan is wrong in one plausible way."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.forward_scan = scan.forward_scan

    def reverse_scan(self, *args):
        args = list(args)
        dyn, surrogate = args[14], args[13]
        if self.kind == "threshold-reset-term-dropped":
            args[14] = dataclasses.replace(dyn, m_is_theta=False)
        elif self.kind == "reset-gradient-dropped":
            args[14] = dataclasses.replace(dyn, through=False)
        elif self.kind == "surrogate-20%-wider":
            inner = surrogate
            args[13] = lambda v, th: inner(th + (v - th) / 1.2, th) / 1.2
        g = scan.reverse_scan(*args)
        if self.kind == "threshold-sign-flipped" and g["theta"] is not None:
            g["theta"] = -g["theta"]
        return g


# kind -> (reset option it is run with, the cases that cannot see the break)
BROKEN = {
    "threshold-sign-flipped": ("detached", set()),
    # theta is not the reset amount there; with T = 1 the reset never reaches the loss
    "threshold-reset-term-dropped": ("detached", {"T=1", "reset-zero", "subtract-0.5"}),
    "reset-gradient-dropped": ("through", {"T=1"}),
    "surrogate-20%-wider": ("detached", set()),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_implementations_fail(kind, monkeypatch):
    monkeypatch.setattr(method, "_backend", lambda *args: _Broken(kind))
    reset_grad, blind = BROKEN[kind]
    results = [run_raster_case(Rouser(), c, "float64") for c in _trained_cases(reset_grad)]
    assert {r.case for r in results if r.status != "failed"} == blind
    assert all(r.max_rel_err > 100 * r.tolerance for r in results if r.status == "failed")


# --- per-layer sharing, clamp, options -------------------------------------------------------


@pytest.mark.parametrize("reset_grad", ["detached", "through"])
@pytest.mark.parametrize("neuron", [LIF(tau_mem=5.0, tau_syn=2.0), LIF(tau_mem=5.0, reset="zero")])
def test_per_layer_threshold_matches_bptt_with_a_shared_leaf(reset_grad, neuron):
    torch.manual_seed(0)
    layer = (
        Rouser()
        .layer(
            neuron,
            6,
            9,
            train_threshold=True,
            threshold_sharing="layer",
            reset_grad=reset_grad,
            weight_gain=3.0,
            surrogate=Exponential(),
        )
        .double()
    )
    assert layer.params.threshold.shape == (1,)
    x = (torch.rand(40, 3, 6, dtype=torch.float64) < 0.3).double()
    c = torch.randn(40, 3, 9, dtype=torch.float64)
    spikes = layer(x)
    ours = torch.autograd.grad((spikes * c).sum(), [layer.weight, layer.params.threshold])

    w = layer.weight.detach().clone().requires_grad_(True)
    th = torch.full((1,), neuron.threshold, dtype=torch.float64, requires_grad=True)
    p = layer.params
    current = x @ w.t()
    lif = p.coefficients(current)
    coefficients = LIFCoefficients(lif.alpha, lif.beta, th.expand(9), th.expand(9))
    state = LIFState.zeros(3, 9, neuron.tau_syn is not None, current)
    spike_fn = SurrogateSpike(Exponential(), reset_grad)
    ref_spikes, _ = run_steps(neuron, coefficients, state, current, spike_fn)
    assert torch.equal(spikes.detach(), ref_spikes.detach()) and 0 < spikes.mean() < 1
    ref = torch.autograd.grad((ref_spikes * c).sum(), [w, th])
    for g, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)
    assert ours[1].abs().item() > 0


def test_th_min_projects_the_threshold():
    layer = Rouser().layer(LIF(threshold=1.0), 4, 5, train_threshold=True, th_min=0.2)
    with torch.no_grad():
        layer.params.threshold.copy_(torch.tensor([0.5, 0.1, -1.0, 2.0, 0.2]))
    layer(torch.zeros(3, 2, 4))
    assert layer.params.threshold.tolist() == pytest.approx([0.5, 0.2, 0.2, 2.0, 0.2])


@pytest.mark.parametrize(
    "options,match",
    [
        ({"threshold_sharing": "group", "train_threshold": True}, "threshold_sharing"),
        ({"reset_grad": "half"}, "reset_grad"),
        ({"threshold_sharing": "layer", "train_threshold": False}, "add train_threshold=true"),
        ({"th_min": 0.1, "train_threshold": False}, "add train_threshold=true"),
        ({"th_min": -1.0, "train_threshold": True}, "positive"),
        ({"th_min": 2.0, "train_threshold": True}, "exceeds the initial threshold"),
    ],
)
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(SnnkitError, match=match) as info:
        Rouser().layer(LIF(), 3, 4, **options)
    assert "\n" not in str(info.value)


def test_declares_its_oracle_and_limits():
    r = Rouser()
    assert r.oracle == "bptt-detached-reset" and r.exact
    assert r.supports(LIF(reset="zero")) is None and r.supports(IF()) is None
    assert r.supports(LI()) is not None
    assert r.run_defaults == {"surrogate": "rouser_exponential"}
    names = [n for n, _ in r.network("3-4-2", LIF()).named_parameters()]
    assert "0.neurons.params.threshold" in names  # trained by default


@pytest.mark.parametrize("reset_grad", ["detached", "through"])
def test_saves_only_the_membrane(reset_grad):
    """No per-step graph: one [T, B, N] tensor (the membrane) plus O(B N + N) state."""
    torch.manual_seed(0)
    x = torch.randn(100, 8, 64).requires_grad_(True)
    neuron = LIF(tau_mem=10.0, tau_syn=5.0)
    layer = Rouser().layer(neuron, 64, 64, train_threshold=True, reset_grad=reset_grad)
    ours = saved_bytes(lambda: layer.neurons.dynamics(x, layer.neurons.initial_state(x)))
    ref_layer = BPTT().layer(neuron, 64, 64, train_threshold=True, reset_grad=reset_grad)
    ref = saved_bytes(lambda: ref_layer.neurons.dynamics(x, ref_layer.neurons.initial_state(x)))
    membrane = x.numel() * x.element_size()
    assert membrane <= ours <= membrane + 3 * 8 * 64 * 4 + 5 * 64 * 4
    assert ours < ref / 2  # the autograd loop keeps ~2.4 tensors per step here


# --- the surrogate -----------------------------------------------------------------------------


def test_surrogate_is_the_papers_exponential_in_absolute_units():
    s = RouserExponential()
    assert (s.scale, s.tau) == (1.5, 3.75)
    v = torch.linspace(-3, 5, 33, dtype=torch.float64)
    for theta in (0.5, 1.25, 3.0):
        expected = 1.5 / 3.75 * torch.exp(-(v - theta).abs() / 3.75)
        torch.testing.assert_close(s(v, theta), expected, rtol=0, atol=1e-15)
        # the built-in exponential scales its width with theta: equal only for w = tau/theta
        torch.testing.assert_close(
            Exponential(width=3.75 / theta, scale=1.5)(v, theta), expected, rtol=1e-14, atol=0
        )
    with pytest.raises(SnnkitError, match="tau must be a positive number"):
        RouserExponential(tau=0.0)


def test_threshold_gradient_is_minus_the_membrane_gradient():
    """dS/dTh = -dS/dV: on one step from rest, dL/dTh = -dL/dc (the input current)."""
    layer = Rouser().layer(IF(threshold=1.25), 1, 4, train_threshold=True).double()
    current = torch.tensor([[[0.3, 1.2, 1.3, 4.0]]], dtype=torch.float64, requires_grad=True)
    spikes, _ = layer.neurons.dynamics(current, layer.neurons.initial_state(current))
    g_c, g_th = torch.autograd.grad(spikes.sum(), [current, layer.params.threshold])
    torch.testing.assert_close(g_th, -g_c[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(g_c[0, 0], RouserExponential()(current.detach()[0, 0], 1.25))


def test_registered_through_its_entry_point_when_installed():
    try:
        metadata.distribution("snnkit")
    except metadata.PackageNotFoundError:
        pytest.skip("snnkit is not pip-installed here; the entry point exists only then")
    from snnkit.registry import load_registry

    registry = load_registry()
    entry = registry.entry("gradient", "rouser")
    assert entry.plugin.module == "snnkit_rouser.plugin"
    assert isinstance(registry.surrogate("rouser_exponential"), RouserExponential)
    assert isinstance(registry.gradient("rouser").neuron(LIF(), 3), RouserNeuron)
