"""Conformance cases for raster methods: gradients equal the BPTT oracle the method declares.

Each case builds the method's network and the oracle's (``bptt`` or
``bptt-detached-reset``), gives both the same random weights, feeds both the same random
input (in one call or several chained calls with carried state), checks that the
forward passes agree, then compares the gradients of one random linear functional of
every layer's spikes and the readout with respect to every parameter and the input.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch

from snnkit import arch
from snnkit.arch import SYNAPSE_OPTIONS
from snnkit.conformance.metrics import compare, worst_tensor
from snnkit.conformance.result import CaseResult
from snnkit.errors import SnnkitError
from snnkit.methods import GradientMethod
from snnkit.neurons import IF, LIF, NeuronSpec, own_kind
from snnkit.nn import Network, Readout, TimeDistributed
from snnkit.reference.bptt import BPTT, DetachedResetBPTT
from snnkit.surrogates import ATan, Exponential, FastSigmoid, Surrogate, Triangle

DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEFAULT_NEURON = LIF(tau_mem=5.0)


@dataclass(frozen=True)
class RasterCase:
    """One seeded network, input and loss.

    The network is an MLP of ``shape`` by default, the layers of ``arch`` on input
    features ``input_shape``, or (``features``) one population of neurons of that shape
    fed random currents directly, then a readout. ``neuron`` None is the neuron under test
    (LIF(tau_mem=5) unless the run names one); a case with its own ``neuron`` checks a
    variant of that kind only, except with ``trains_any``: then a neuron of another kind
    under test runs it with every one of its trainable quantities trained. ``surrogate``
    None is the surrogate under test.
    """

    name: str
    neuron: NeuronSpec | None = None
    shape: str = "6-8-4"
    arch: str | None = None
    input_shape: tuple[int, ...] = ()
    features: tuple[int, ...] | None = None
    steps: int = 30
    batch: int = 3
    recurrent: bool = False
    chunks: int = 1
    surrogate: Surrogate | None = None
    layer_options: dict[str, Any] = field(default_factory=dict)
    input_rate: float = 0.3
    weight_gain: float = 2.5
    trains_any: bool = False

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())

    @property
    def n_inputs(self) -> int:
        if self.features is not None:
            return math.prod(self.features)
        if self.arch is not None:
            return math.prod(self.input_shape)
        return int(self.shape.split("-")[0])


RASTER_CASES: tuple[RasterCase, ...] = (
    RasterCase("single-layer"),
    RasterCase("deep", shape="6-10-8-6-4"),
    RasterCase("recurrent", recurrent=True),
    RasterCase("chained-calls", chunks=3),
    RasterCase("recurrent-chained", recurrent=True, chunks=2, neuron=LIF(tau_mem=5.0, tau_syn=3.0)),
    RasterCase("T=1", steps=1, weight_gain=6.0),
    RasterCase("T=100", steps=100, batch=2),
    RasterCase("synaptic-current", neuron=LIF(tau_mem=5.0, tau_syn=2.0)),
    RasterCase("if-neuron", neuron=IF(), weight_gain=1.5),
    RasterCase("reset-zero", neuron=LIF(tau_mem=5.0, reset="zero")),
    RasterCase("subtract-0.5", neuron=LIF(tau_mem=5.0, subtract=0.5)),
    RasterCase(
        "multi-spike", neuron=LIF(tau_mem=5.0, multi_spike=True, max_spikes=3), weight_gain=5.0
    ),
    RasterCase("fast-sigmoid", surrogate=FastSigmoid(slope=5.0)),
    RasterCase("atan", surrogate=ATan()),
    RasterCase("triangle", surrogate=Triangle(width=1.5)),
    RasterCase(
        "trainable-tau-threshold",
        neuron=LIF(tau_mem=5.0, tau_syn=2.0),
        layer_options={"train_tau": True, "train_threshold": True},
        trains_any=True,
    ),
    # architectures: neurons of any shape behind torch layers
    RasterCase(
        "conv-pool-dense",
        arch="4c3-a2-6-4",
        input_shape=(2, 6, 6),
        weight_gain=3.0,
        input_rate=0.4,
    ),
    RasterCase(
        "conv-bn-chained",
        arch="3c3p1-bn-m2-5-4",
        input_shape=(2, 4, 4),
        chunks=2,
        input_rate=0.4,
    ),
    RasterCase(
        "channel-thresholds",
        arch="4c3-a2-6-4",
        input_shape=(2, 6, 6),
        weight_gain=3.0,
        input_rate=0.4,
        layer_options={"train_threshold": True, "sharing": "channel"},
    ),
    RasterCase("neurons-3d", features=(2, 3, 4), weight_gain=1.5),
    RasterCase("neurons-4d", features=(2, 2, 3, 2), chunks=2, weight_gain=1.5),
)
# cases that exist to vary the surrogate (redundant when a surrogate is under test)
SURROGATE_CASES = ("fast-sigmoid", "atan", "triangle")


def oracle_for(method: GradientMethod) -> GradientMethod:
    """The reference method whose gradients ``method`` must reproduce."""
    if method.oracle == "bptt":
        return BPTT()
    if method.oracle == "bptt-detached-reset":
        return DetachedResetBPTT()
    raise SnnkitError(
        f"method '{method.name}' declares oracle '{method.oracle}', not a raster oracle"
    )


def _build(method: GradientMethod, case: RasterCase, neuron, surrogate, **extra):
    options = {**_options(case, neuron), **extra}
    if case.features is not None:
        weightless = {k: v for k, v in options.items() if k not in SYNAPSE_OPTIONS}
        pop = method.neuron(neuron, case.features, surrogate=surrogate, **weightless)
        flat = math.prod(case.features)
        return Network(
            TimeDistributed(torch.nn.Unflatten(1, case.features)),
            pop,
            TimeDistributed(torch.nn.Flatten()),
            Readout(flat, 3),
        )
    if case.arch is not None:
        layers = arch.parse(case.arch)
        return arch.build(
            layers,
            method,
            neuron,
            input_shape=case.input_shape,
            num_classes=layers[-1].size,
            surrogate=surrogate,
            recurrent=case.recurrent,
            **options,
        )
    return method.network(
        case.shape, neuron, recurrent=case.recurrent, surrogate=surrogate, **options
    )


def _trained_like(net: torch.nn.Module, neuron: NeuronSpec) -> dict[str, tuple[str, ...]]:
    """Oracle options that make the same neuron quantities leaves as in the method's network
    (a method may train thresholds or time constants by default, e.g. Rouser)."""
    leaves = {name.rsplit(".", 1)[-1] for name, _ in net.named_parameters()}
    trained = tuple(sorted(leaves & set(neuron.quantities())))
    return {"train": trained} if trained else {}


def _options(case: RasterCase, neuron: NeuronSpec) -> dict[str, Any]:
    """The case's layer options for ``neuron``: a ``trains_any`` case on a neuron of another
    kind than its own trains all of that neuron's finite trainable quantities."""
    if not case.trains_any or case.neuron is None or own_kind(neuron) == case.neuron.kind:
        return case.layer_options
    q = neuron.quantities()
    return {"train": tuple(n for n in neuron.trainable if n in q and math.isfinite(q[n]))}


def _randomise(net: torch.nn.Module, case: RasterCase, theta: float, gen: torch.Generator) -> None:
    """Synaptic weights ~ N(0, (gain * theta)^2 / fan_in), recurrent ones smaller; fixed by
    the case (one-dimensional parameters, e.g. batch norm's, keep their values)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not name.endswith("weight") or p.ndim < 2:
                continue
            fan_in = p[0].numel()
            scale = 0.5 if name.endswith("recurrent_weight") else 1.0
            std = scale * case.weight_gain * theta / math.sqrt(fan_in)
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * std)


def _run(
    net, x: torch.Tensor, chunks: int, coefs
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Forward in ``chunks`` calls with carried state; returns loss, readout, hidden spikes."""
    net.reset_state()
    outs, hidden = [], None
    for part in x.tensor_split(chunks, dim=0):
        out = net(part)
        outs.append(out.output)
        hidden = (
            [[h] for h in out.hidden_spikes]
            if hidden is None
            else [a + [h] for a, h in zip(hidden, out.hidden_spikes, strict=True)]
        )
    output = torch.cat(outs)
    spikes = [torch.cat(h) for h in hidden]
    if coefs is None:
        return output.new_zeros(()), output, spikes
    c_out, c_hidden = coefs
    loss = (output * c_out.to(output)).sum() + sum(
        (s * c.to(s)).sum() for s, c in zip(spikes, c_hidden, strict=True)
    )
    return loss, output, spikes


def _gradients(net, x, case, coefs):
    x = x.detach().clone().requires_grad_(True)
    loss, output, spikes = _run(net, x, case.chunks, coefs)
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    params = [p for n, p in net.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    grads = [
        torch.zeros_like(t) if g is None else g for g, t in zip(grads, [x, *params], strict=True)
    ]
    return output.detach(), [s.detach() for s in spikes], ["input", *names], grads


def subject_of(
    case: RasterCase, neuron: NeuronSpec | None, surrogate: Surrogate | None
) -> tuple[NeuronSpec, Surrogate] | str:
    """The (neuron, surrogate) ``case`` runs with, given the neuron and surrogate under
    test (None: the defaults), or why the case does not apply to them."""
    other_kind = (
        case.neuron is not None and neuron is not None and own_kind(neuron) != case.neuron.kind
    )
    if other_kind and not case.trains_any:
        return f"a variant of '{case.neuron.kind}', not '{neuron.kind}'"
    if case.surrogate is not None and surrogate is not None:
        return f"varies the surrogate; this run checks {surrogate.describe()}"
    chosen = (neuron if other_kind else case.neuron) or neuron or DEFAULT_NEURON
    return chosen, case.surrogate or surrogate or Exponential()


def run_raster_case(
    method: GradientMethod,
    case: RasterCase,
    dtype: str = "float64",
    device: str = "cpu",
    *,
    neuron: NeuronSpec | None = None,
    surrogate: Surrogate | None = None,
) -> CaseResult:
    """Run one case; never raises for a method's failure (it is reported in the result)."""
    base = CaseResult.base(method, case.name, "raster", dtype, device)
    tol = base["tolerance"]
    subject = subject_of(case, neuron, surrogate)
    if isinstance(subject, str):
        return CaseResult.skip(base, subject)
    neuron, surrogate = subject
    reason = method.supports(neuron)
    if reason is not None:
        return CaseResult.skip(base, reason)
    oracle = oracle_for(method)
    gen = torch.Generator().manual_seed(case.seed)
    try:
        net = _build(method, case, neuron, surrogate)
    except (SnnkitError, TypeError, NotImplementedError) as exc:
        return CaseResult.skip(base, f"not offered by the method: {exc}")
    ref = _build(oracle, case, neuron, surrogate, **_trained_like(net, neuron))
    theta = neuron.quantities().get("threshold", 1.0)
    _randomise(net, case, theta, gen)
    try:
        ref.load_state_dict(net.state_dict())
    except RuntimeError as exc:
        return CaseResult.error(
            base,
            f"parameters do not match the oracle's layout (synapse, neurons.params.*): {exc}",
        )
    torch_dtype = DTYPES[dtype]
    net.to(device, torch_dtype)
    ref.to("cpu", torch_dtype)
    shape = (case.steps, case.batch, case.n_inputs)
    if case.features is None:  # input spikes
        x = (torch.rand(shape, generator=gen, dtype=torch.float64) < case.input_rate).to(
            torch_dtype
        )
    else:  # input currents straight into the neurons
        x = (torch.rand(shape, generator=gen, dtype=torch.float64) * case.weight_gain * theta).to(
            torch_dtype
        )
    with torch.no_grad():  # the shapes of what the loss reads
        _, probe_out, probe_hidden = _run(ref, x, case.chunks, None)
    c_hidden = [torch.randn(h.shape, generator=gen, dtype=torch.float64) for h in probe_hidden]
    coefs = (torch.randn(probe_out.shape, generator=gen, dtype=torch.float64), c_hidden)

    try:
        out, spikes, names, grads = _gradients(net, x.to(device), case, coefs)
    except Exception as exc:  # the method crashed: a failure of the method, reported
        return CaseResult.error(base, f"{type(exc).__name__}: {exc}")
    ref_out, ref_spikes, ref_names, ref_grads = _gradients(ref, x, case, coefs)
    if names != ref_names:
        return CaseResult.error(base, f"parameters {names} differ from the oracle's {ref_names}")
    activity = [s.mean().item() for s in ref_spikes]
    if any(a == 0.0 for a in activity) or all(a >= 1.0 for a in activity):
        return CaseResult.error(
            base, f"degenerate case (spike rates {activity}); the suite needs adjusting"
        )
    for k, (s, r) in enumerate(zip(spikes, ref_spikes, strict=True)):
        if not torch.equal(s.cpu(), r):
            flips = (s.cpu() != r).sum().item()
            return CaseResult.fail(base, f"forward differs: layer {k} has {flips} different spikes")
    fwd = compare([out.cpu()], [ref_out])
    if fwd.max_rel_err > tol:
        return CaseResult.fail(base, f"forward readout differs by {fwd.max_rel_err:.2e} (relative)")
    cmp = compare([g.cpu() for g in grads], ref_grads)
    worst = worst_tensor(names, [g.cpu() for g in grads], ref_grads)
    detail = (
        f"worst: {worst[0]} ({worst[1]:.1e}); spike rates {', '.join(f'{a:.2f}' for a in activity)}"
    )
    return CaseResult.from_comparison(base, cmp, detail)
