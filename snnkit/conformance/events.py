"""Conformance cases for event methods: gradients equal central finite differences.

Each case draws weights and input spike times (redrawing, deterministically, until the
draw is away from every non-differentiable point: grazing crossings, near misses,
near-coincident events, spikes at the window's end), loads the weights into the
method's network, checks that its spike times equal the float64 event-exact
simulation's, then compares the gradient of a random functional of all spike times
(and of the LI readout's integral, discounted integral and maximum) with central
finite differences of that simulation (h = 1e-6, entries whose spike counts change at
+-h refused).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import torch

from snnkit.conformance.metrics import compare, worst_tensor
from snnkit.conformance.result import CaseResult
from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.methods import GradientMethod
from snnkit.neurons import LI, LIF
from snnkit.reference.exact_autograd import ExactAutograd, exact_neuron
from snnkit.reference.finite_differences import central_differences, critical_points

F64 = torch.float64
DTYPES = {"float64": torch.float64, "float32": torch.float32}
MAX_DRAWS = 200


@dataclass(frozen=True)
class EventCase:
    """One event network, its input and loss (drawn from the case's seed)."""

    name: str
    shape: str = "4-6-3"
    neuron: LIF = field(default_factory=lambda: LIF(tau_mem=10.0, tau_syn=5.0))
    readout: str = "spikes"  # "spikes" (spiking output layer) or "li" (leaky integrators)
    recurrent: bool = False
    duration: float = 40.0
    inputs_per_neuron: int = 2
    batch: int = 2
    weight_gain: float = 4.0
    min_spikes_per_neuron: int = 1  # 2: the draw must contain a neuron that fires twice

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())


EVENT_CASES: tuple[EventCase, ...] = (
    EventCase("single-layer", shape="4-5"),
    EventCase("deep", shape="4-6-5-3"),
    EventCase("recurrent", recurrent=True),
    EventCase("multi-spike", shape="4-4", weight_gain=9.0, min_spikes_per_neuron=2),
    EventCase("li-readout", readout="li"),
    EventCase("equal-taus", neuron=LIF(tau_mem=5.0, tau_syn=5.0)),
    EventCase("general-taus", neuron=LIF(tau_mem=10.0, tau_syn=3.0)),
    EventCase(
        "reset-subtract",
        shape="4-5",
        neuron=LIF(tau_mem=10.0, tau_syn=5.0, reset="subtract"),
        weight_gain=8.0,
    ),
)


def _readout_spec(case: EventCase):
    return (
        case.neuron
        if case.readout == "spikes"
        else LI(tau_mem=case.neuron.tau_mem, tau_syn=case.neuron.tau_syn)
    )


def _draw(case: EventCase, net, attempt: int):
    """Weights (in place) and input events for one attempt; deterministic in (case, attempt)."""
    gen = torch.Generator().manual_seed(case.seed * 1000 + attempt)
    theta = case.neuron.threshold
    with torch.no_grad():
        for name, p in net.named_parameters():
            scale = 0.3 if name.endswith("recurrent_weight") else 1.0
            p.copy_(
                torch.randn(p.shape, generator=gen, dtype=F64)
                * scale
                * case.weight_gain
                * theta
                / math.sqrt(p.shape[1])
            )
    n_in = int(case.shape.split("-")[0])
    times = (
        torch.rand(case.batch, n_in, case.inputs_per_neuron, generator=gen, dtype=F64)
        * 0.5
        * case.duration
    )
    return Events(times.sort(dim=-1).values, case.duration)


def _acceptable(case: EventCase, result, inputs) -> bool:
    if critical_points(result, inputs, exact_neuron(case.neuron), case.duration):
        return False
    counts = [torch.isfinite(e.times).sum(dim=-1) for e in result.spikes]
    if any(c.sum() < 2 for c in counts):
        return False
    if (
        case.min_spikes_per_neuron > 1
        and max(c.max().item() for c in counts) < case.min_spikes_per_neuron
    ):
        return False
    return True


def reference_draw(case: EventCase):
    """The case's network (exact reference, float64) and input: the first clean draw."""
    ref = (
        ExactAutograd()
        .network(case.shape, case.neuron, readout=_readout_spec(case), recurrent=case.recurrent)
        .to(F64)
    )
    for attempt in range(MAX_DRAWS):
        inputs = _draw(case, ref, attempt)
        with torch.no_grad():
            result = ref.simulate(inputs)
        if _acceptable(case, result, inputs):
            return ref, inputs, result
    raise SnnkitError(
        f"event case '{case.name}': no clean draw in {MAX_DRAWS} attempts; adjust the case"
    )


def _coefficients(case: EventCase, result):
    gen = torch.Generator().manual_seed(case.seed + 7)
    spikes = [torch.randn(e.times.shape, generator=gen, dtype=F64) for e in result.spikes]
    readout = (
        torch.randn(3, case.batch, 1, generator=gen, dtype=F64)
        if result.readout is not None
        else None
    )
    return spikes, readout


def _loss(output, coefs, duration: float) -> torch.Tensor:
    c_spikes, c_readout = coefs
    total = 0.0
    for times, c in zip(output.spikes, c_spikes, strict=True):
        times = times[..., : c.shape[-1]]
        finite = torch.isfinite(times)
        total = total + (torch.where(finite, times, torch.zeros_like(times)) * c.to(times)).sum()
    if c_readout is not None:
        r = output.readout
        stats = (r.integral() / duration, r.integral_exp() / duration, r.maximum())
        total = total + sum((s * c.to(s)).sum() for s, c in zip(stats, c_readout, strict=True))
    return total


def _unsupported(method: GradientMethod, case: EventCase) -> str | None:
    """Why ``method`` cannot run ``case`` (its neurons, or its network), else None."""
    for spec in (case.neuron, _readout_spec(case)):
        reason = method.supports(spec) if spec.spiking else None
        if reason is not None:
            return reason
    try:
        method.network(
            case.shape, case.neuron, readout=_readout_spec(case), recurrent=case.recurrent
        )
    except (SnnkitError, TypeError, NotImplementedError) as exc:
        return f"not offered by the method: {exc}"
    return None


class _Crashed(Exception):
    """The method failed on the case: becomes an ``error`` result."""


def _method_gradients(method, case, ref, inputs, coefs, dtype, device):
    """``method``'s network loaded with the reference weights: its output, parameter names
    and the gradients of the case's loss to its parameters and the input times."""
    net = method.network(
        case.shape, case.neuron, readout=_readout_spec(case), recurrent=case.recurrent
    )
    torch_dtype = DTYPES[dtype]
    net.to(device, torch_dtype)  # before loading, so float64 weights arrive unrounded
    try:
        net.load_state_dict(ref.state_dict())
    except RuntimeError as exc:
        raise _Crashed(
            f"parameters do not match the event layout (layers.<k>.weight, output.weight): {exc}"
        ) from None
    times = inputs.times.to(device, torch_dtype).requires_grad_(True)
    try:
        out = net(Events(times, case.duration))
        names = [n for n, _ in net.named_parameters()]
        params = [p for _, p in net.named_parameters()]
        grads = torch.autograd.grad(
            _loss(out, coefs, case.duration), [*params, times], allow_unused=True
        )
    except Exception as exc:
        raise _Crashed(f"{type(exc).__name__}: {exc}") from None
    grads = [
        torch.zeros_like(t) if g is None else g
        for g, t in zip(grads, [*params, times], strict=True)
    ]
    return out, [*names, "input times"], grads


def run_agreement_case(
    method: GradientMethod, peer: GradientMethod, case: EventCase, device: str = "cpu"
) -> CaseResult:
    """``method``'s gradients against ``peer``'s, two exact event methods, on the case's
    network and input in float64: exact methods agree to rounding (tolerance 1e-10), far
    below what the finite-difference oracle (1e-6) can resolve."""
    base = CaseResult.base(method, case.name, "agreement", "float64", device, peer.name)
    for m in (method, peer):
        reason = _unsupported(m, case)
        if reason is not None:
            return CaseResult.skip(base, f"{m.name}: {reason}")
    ref, inputs, result = reference_draw(case)
    coefs = _coefficients(case, result)
    try:
        _, names, mine = _method_gradients(method, case, ref, inputs, coefs, "float64", device)
    except _Crashed as exc:
        return CaseResult.error(base, str(exc))
    try:
        _, _, theirs = _method_gradients(peer, case, ref, inputs, coefs, "float64", device)
    except _Crashed as exc:
        return CaseResult.skip(base, f"{peer.name} failed on this case: {exc}")
    mine, theirs = [g.cpu() for g in mine], [g.cpu() for g in theirs]
    worst = worst_tensor(names, mine, theirs)
    spikes = [int(torch.isfinite(e.times).sum()) for e in result.spikes]
    detail = f"worst: {worst[0]} ({worst[1]:.1e}); spikes per layer {spikes}"
    return CaseResult.from_comparison(base, compare(mine, theirs), detail)


def run_event_case(
    method: GradientMethod, case: EventCase, dtype: str = "float64", device: str = "cpu"
) -> CaseResult:
    """Run one case; a method's failure is reported in the result, never raised."""
    base = CaseResult.base(method, case.name, "events", dtype, device)
    reason = _unsupported(method, case)
    if reason is not None:
        return CaseResult.skip(base, reason)
    ref, inputs, result = reference_draw(case)
    coefs = _coefficients(case, result)
    try:
        out, names, grads = _method_gradients(method, case, ref, inputs, coefs, dtype, device)
    except _Crashed as exc:
        return CaseResult.error(base, str(exc))
    grads = [g.cpu() for g in grads]
    for k, (mine, want) in enumerate(zip(out.spikes, result.spikes, strict=True)):
        mine = mine.detach().to("cpu", F64)
        want = want.times
        pad = torch.full(
            (*want.shape[:2], max(0, mine.shape[-1] - want.shape[-1])), math.inf, dtype=F64
        )
        want = torch.cat([want, pad], dim=-1)
        mine = torch.cat(
            [
                mine,
                torch.full((*mine.shape[:2], want.shape[-1] - mine.shape[-1]), math.inf, dtype=F64),
            ],
            dim=-1,
        )
        if not torch.equal(torch.isfinite(mine), torch.isfinite(want)):
            return CaseResult.fail(
                base, f"forward differs: layer {k} spike counts differ from the exact simulation"
            )
        finite = torch.isfinite(want)
        err = (mine[finite] - want[finite]).abs().max().item() if finite.any() else 0.0
        if err > (1e-9 if dtype == "float64" else 1e-3) * case.duration:
            return CaseResult.fail(
                base, f"forward differs: layer {k} spike times off by up to {err:.2e} ms"
            )

    # the oracle: central differences of the float64 exact simulation
    ref_params = [p for _, p in ref.named_parameters()]
    ref_times = inputs.times.clone()
    last = {}

    def loss_fn():
        with torch.no_grad():
            res = ref.simulate(Events(ref_times, case.duration))
        last["counts"] = res.spike_counts()
        from snnkit.event_nets import EventOutput

        return _loss(EventOutput([e.times for e in res.spikes], res.readout), coefs, case.duration)

    fd = central_differences(loss_fn, [*ref_params, ref_times], spike_counts=lambda: last["counts"])
    refused = sum(int(r.sum()) for r in fd.refused)
    total = sum(r.numel() for r in fd.refused)
    cmp = compare(grads, fd.grads)
    worst = worst_tensor(names, grads, fd.grads)
    spikes = [int(torch.isfinite(e.times).sum()) for e in result.spikes]
    detail = f"worst: {worst[0]} ({worst[1]:.1e}); spikes per layer {spikes}; FD refused {refused}/{total}"
    return CaseResult.from_comparison(base, cmp, detail)
