"""NIR export and import: raster networks as Neuromorphic Intermediate Representation graphs.

:func:`export` turns a :class:`~snnkit.nn.Network` (dense, recurrent, convolutional; LIF,
IF and LI neurons) into a ``nir.NIRGraph``; :func:`load` builds a network for any raster
method from such a graph. NIR describes neurons as continuous-time ODEs and leaves the
discretisation to each reader; the ``scheme`` names the reader's discretisation the graph
is written for (``"exact"``: exponential decay, snnkit's own; ``"euler"``: forward Euler,
what snntorch and norse simulate), ``time_step`` the length of one step in the graph's
time unit. docs/nir.md gives the equations. Needs the optional extra ``nir``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.neurons import IF, LI, LIF, NeuronSpec, own_kind
from snnkit.nn import (
    Dense,
    Integrator,
    Network,
    Readout,
    SpikingLayer,
    SpikingNeuron,
    TimeDistributed,
    _SynapseNeurons,
)

SCHEMES = ("exact", "euler")
RESETS = ("subtract", "zero")
NEURON_NODES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
SUPPORTED = (
    "Input, Output, Linear, Affine, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, "
    + ", ".join(NEURON_NODES)
)
RTOL = 1e-12  # how far r, w_in may be from tau/time_step (at least: rounding of the writer)


def require_nir():
    """The ``nir`` module, or a one-line error naming the extra that provides it."""
    try:
        import nir
    except ImportError:
        raise SnnkitError(
            "NIR export/import needs the optional extra 'nir': pip install 'snnkit[nir]'"
        ) from None
    return nir


def _check_choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise SnnkitError(f"{name}={value!r}: use one of {', '.join(options)}")


def check_discretisation(scheme: str, time_step: float | None) -> None:
    """One line unless ``scheme`` is known and ``time_step`` None or a positive number."""
    _check_choice("--scheme", scheme, SCHEMES)
    ok = isinstance(time_step, int | float) and math.isfinite(time_step) and time_step > 0
    if time_step is not None and not ok:
        raise SnnkitError(f"--time-step must be a positive number, got {time_step!r}")


# -- time constants: snnkit's (decay exp(-dt/tau) per step) <-> the graph's -----------------


def graph_tau(tau: np.ndarray, dt: float, step: float, scheme: str) -> np.ndarray:
    """The graph's time constant for snnkit's ``tau``: the reader's decay over ``step``
    equals snnkit's ``exp(-dt/tau)`` (exact: ``tau*step/dt``; Euler: ``step/(1-decay)``)."""
    if scheme == "exact":
        return tau * (step / dt)
    return step / -np.expm1(-dt / tau)


def snnkit_tau(tau: np.ndarray, dt: float, step: float, scheme: str, where: str) -> np.ndarray:
    """The inverse of :func:`graph_tau`."""
    if scheme == "exact":
        return tau * (dt / step)
    if np.any(tau <= step):
        raise SnnkitError(
            f"NIR node '{where}' has a time constant <= the time step {step:g}: forward Euler "
            "would not decay; load it with scheme='exact'"
        )
    return -dt / np.log1p(-step / tau)


# -- export ------------------------------------------------------------------------------


def _array(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().copy()


class _Writer:
    """Collects nodes and edges while walking a network in order."""

    def __init__(self, scheme: str, step: float | None) -> None:
        self.scheme, self.step = scheme, step
        self.dt: float | None = None
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.last = "input"

    def add(self, name: str, node, *, chain: bool = True) -> None:
        self.nodes[name] = node
        if chain:
            self.edges.append((self.last, name))
            self.last = name

    def synapse(self, name: str, dense: Dense) -> None:
        nir = require_nir()
        weight = _array(dense.weight)
        node = (
            nir.Linear(weight=weight)
            if dense.bias is None
            else nir.Affine(weight=weight, bias=_array(dense.bias))
        )
        self.add(name, node)

    def neurons(self, name: str, module: nn.Module) -> None:
        spec, params = module.neuron, module.params
        if params.features is None:
            raise SnnkitError(f"module {name} has not seen any input: call the network once")
        self._time(spec, name)
        self.add(name, self.neuron_node(name, spec, params))
        weight = getattr(module, "recurrent_weight", None)
        if weight is not None:
            nir = require_nir()
            self.add(f"{name}.recurrent", nir.Linear(weight=_array(weight)), chain=False)
            self.edges += [(name, f"{name}.recurrent"), (f"{name}.recurrent", name)]

    def _time(self, spec: NeuronSpec, name: str) -> None:
        if self.dt is None:
            self.dt = spec.dt
            self.step = self.step if self.step is not None else spec.dt
        elif spec.dt != self.dt:
            raise SnnkitError(
                f"module {name} has dt={spec.dt} but an earlier one dt={self.dt}; a NIR graph "
                "has one time step"
            )

    def neuron_node(self, name: str, spec: NeuronSpec, params) -> Any:
        nir = require_nir()
        kind = own_kind(spec)
        shape = params.features

        def q(key: str) -> np.ndarray:  # a fixed quantity: the spec's float, exactly
            if key in params.constants:
                return np.full(shape, params.constants[key], dtype=np.float64)
            return _array(params.value(key).to(torch.float64)).reshape(shape)

        tau = lambda key: graph_tau(q(key), self.dt, self.step, self.scheme)  # noqa: E731
        zeros = np.zeros(shape)
        trained = ",".join(params.initial)
        meta = {"snnkit.neuron": spec.describe(), "snnkit.trained": trained}
        syn = getattr(spec, "tau_syn", None) is not None
        if kind in ("lif", "if"):
            if spec.multi_spike:
                raise SnnkitError(
                    f"module {name} fires several spikes per step (multi_spike): NIR's neurons "
                    "fire at most one spike per threshold crossing"
                )
            if spec.subtract is not None:
                raise SnnkitError(
                    f"module {name} subtracts {spec.subtract} on a spike, not its threshold: "
                    "export supports the reset to zero and the subtraction of the threshold"
                )
            theta = q("threshold")
            if kind == "if":
                if syn:
                    raise SnnkitError(
                        f"module {name} is IF with tau_syn: NIR has no current-based IF node"
                    )
                return nir.IF(
                    r=np.full(shape, 1 / self.step), v_threshold=theta, v_reset=zeros, metadata=meta
                )
            if not syn:
                t = tau("tau_mem")
                return nir.LIF(
                    tau=t,
                    r=t / self.step,
                    v_leak=zeros,
                    v_threshold=theta,
                    v_reset=zeros,
                    metadata=meta,
                )
            tm, ts = tau("tau_mem"), tau("tau_syn")
            return nir.CubaLIF(
                tau_syn=ts,
                tau_mem=tm,
                r=tm / self.step,
                v_leak=zeros,
                v_threshold=theta,
                v_reset=zeros,
                w_in=ts / self.step,
                metadata=meta,
            )
        if kind == "li":
            if math.isinf(spec.tau_mem):
                raise SnnkitError(f"module {name} is a leaky integrator without leak (tau_mem=inf)")
            tm = tau("tau_mem")
            if not syn:
                return nir.LI(tau=tm, r=tm / self.step, v_leak=zeros, metadata=meta)
            ts = tau("tau_syn")
            return nir.CubaLI(
                tau_syn=ts, tau_mem=tm, r=tm / self.step, v_leak=zeros, w_in=ts / self.step,
                metadata=meta,
            )  # fmt: skip
        raise SnnkitError(
            f"module {name} has '{spec.kind}' neurons; NIR export supports lif, if and li "
            "(NIR has no node for its dynamics)"
        )


def _shape_after(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        p = next(iter(module.parameters()), None)
        like = torch.zeros(1, *shape, dtype=p.dtype if p is not None else torch.float32)
        return tuple(module(like).shape[1:])


def _stateless(w: _Writer, name: str, module: nn.Module, shape: tuple[int, ...]):
    """The node of a TimeDistributed module (or None to skip it), and the shape after it."""
    nir = require_nir()
    if isinstance(module, nn.Dropout | nn.Identity):
        return None, shape  # identity at inference
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        if module.padding_mode != "zeros":
            raise SnnkitError(f"module {name}: NIR convolutions pad with zeros only")
        cls = nir.Conv2d if isinstance(module, nn.Conv2d) else nir.Conv1d
        bias = module.bias if module.bias is not None else torch.zeros(module.out_channels)
        spatial = shape[1:] if isinstance(module, nn.Conv2d) else shape[1]
        node = cls(
            input_shape=spatial,
            weight=_array(module.weight),
            stride=module.stride if isinstance(module, nn.Conv2d) else module.stride[0],
            padding=module.padding if isinstance(module, nn.Conv2d) else module.padding[0],
            dilation=module.dilation if isinstance(module, nn.Conv2d) else module.dilation[0],
            groups=module.groups,
            bias=_array(bias.to(module.weight.dtype)),
        )
        return node, _shape_after(module, shape)
    if isinstance(module, nn.AvgPool2d):
        pair = nn.modules.utils._pair
        if module.ceil_mode or (module.padding and module.count_include_pad is False):
            raise SnnkitError(f"module {name}: NIR pooling has no ceil_mode/count_include_pad")
        args = dict(
            kernel_size=np.array(pair(module.kernel_size)),
            stride=np.array(pair(module.stride)),
            padding=np.array(pair(module.padding)),
        )
        sum_pool = module.divisor_override == 1
        if module.divisor_override not in (None, 1):
            raise SnnkitError(f"module {name}: NIR pooling has no divisor_override")
        node = nir.SumPool2d(**args) if sum_pool else nir.AvgPool2d(**args)
        return node, _shape_after(module, shape)
    if isinstance(module, nn.Flatten):
        # NIR counts the dims of one sample; torch's count the batch (time folded in)
        start, end = (
            (d if d >= 0 else d + len(shape) + 1) - 1 for d in (module.start_dim, module.end_dim)
        )
        end = -1 if end == len(shape) - 1 else end
        if start < 0:
            raise SnnkitError(f"module {name}: a flatten over the batch has no NIR node")
        node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
        return node, _shape_after(module, shape)
    raise SnnkitError(
        f"module {name} is {type(module).__name__}, which has no NIR node (export supports "
        "convolution, average/sum pooling, flatten and dropout; max pooling and batch norm have "
        "no NIR equivalent)"
    )


def export(
    network: Network,
    *,
    scheme: str = "exact",
    time_step: float | None = None,
    input_shape: tuple[int, ...] | None = None,
):
    """The NIR graph of ``network`` (a raster :class:`Network`).

    ``scheme``: the discretisation of the reader the graph is written for (``"exact"``,
    snnkit's, or ``"euler"``, snntorch's and norse's); ``time_step``: one step in the
    graph's time unit (default: the neurons' dt). ``input_shape`` is needed only when the
    first module does not tell it. What NIR cannot express is a one-line error.
    """
    nir = require_nir()
    check_discretisation(scheme, time_step)
    if not isinstance(network, Network):
        raise SnnkitError(
            f"export takes an snnkit Network, got {type(network).__name__} (event networks "
            "do not export, see docs/nir.md)"
        )
    modules = list(network)
    w = _Writer(scheme, time_step)
    in_shape = shape = _input_shape(modules, input_shape)
    flat_input = False
    if _unflatten(modules[0]) is not None:
        modules, flat_input = modules[1:], True
    for k, module in enumerate(modules):
        name = str(k)
        if isinstance(module, _SynapseNeurons):
            w.synapse(f"{name}.synapse", module.synapse)
            w.neurons(f"{name}.neurons", module.neurons)
            shape = (module.out_features,)
        elif isinstance(module, Dense):
            w.synapse(name, module)
            shape = (module.out_features,)
        elif isinstance(module, SpikingNeuron | Integrator):
            w.neurons(name, module)
        elif isinstance(module, TimeDistributed):
            node, shape = _stateless(w, name, module.module, shape)
            if node is not None:
                w.add(name, node)
        else:
            raise SnnkitError(
                f"module {name} is {type(module).__name__}, which export does not know; see "
                "docs/nir.md for the supported modules"
            )
    if w.dt is None:
        raise SnnkitError("the network has no neurons to export")
    w.nodes["input"] = nir.Input(
        input_type={"input": np.array(in_shape)}, metadata={"snnkit.flat_input": int(flat_input)}
    )
    w.nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    w.edges.append((w.last, "output"))
    meta = {"snnkit.scheme": scheme, "snnkit.time_step": w.step, "snnkit.dt": w.dt}
    return nir.NIRGraph(nodes=w.nodes, edges=w.edges, metadata=meta, type_check=False)


def _unflatten(module: nn.Module) -> tuple[int, ...] | None:
    if isinstance(module, TimeDistributed) and isinstance(module.module, nn.Unflatten):
        return tuple(module.module.unflattened_size)
    return None


def _input_shape(modules, given) -> tuple[int, ...]:
    """The feature shape of the network's input (after an initial Unflatten)."""
    if given is not None:
        return tuple(given)
    first = modules[0]
    if (unflat := _unflatten(first)) is not None:
        return unflat
    if isinstance(first, Dense):
        return (first.in_features,)
    if hasattr(first, "synapse"):
        return (first.synapse.in_features,)
    if isinstance(first, SpikingNeuron | Integrator) and first.params.features is not None:
        return first.params.features
    raise SnnkitError("cannot tell the network's input shape: pass input_shape=(C, H, W)")


# -- import ------------------------------------------------------------------------------


def _inline(graph, nir) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The nodes and edges of ``graph`` with nested graphs (e.g. snntorch's recurrent
    subgraphs) inlined as ``outer.inner`` nodes."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}  # a subgraph -> the nodes its Input feeds
    exit_: dict[str, list[str]] = {}  # a subgraph -> the nodes feeding its Output
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _inline(node, nir)
            inputs = [k for k, v in inner_nodes.items() if isinstance(v, nir.Input)]
            outputs = [k for k, v in inner_nodes.items() if isinstance(v, nir.Output)]
            entry[name] = [f"{name}.{b}" for a, b in inner_edges if a in inputs]
            exit_[name] = [f"{name}.{a}" for a, b in inner_edges if b in outputs]
            for k, v in inner_nodes.items():
                if k not in inputs and k not in outputs:
                    nodes[f"{name}.{k}"] = v
            edges += [
                (f"{name}.{a}", f"{name}.{b}")
                for a, b in inner_edges
                if a not in inputs and b not in outputs
            ]
        else:
            nodes[name] = node
    for a, b in graph.edges:
        for src in exit_.get(a, [a]):
            for dst in entry.get(b, [b]):
                edges.append((src, dst))
    return nodes, list(dict.fromkeys(edges))


def _chain(nodes, edges, nir) -> tuple[list[str], dict[str, str]]:
    """The nodes from Input to Output in order, and each population's recurrent weight."""
    recurrent: dict[str, str] = {}
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise SnnkitError(f"NIR graph has an edge {a} -> {b} to a node it does not have")
        succ[a].append(b)
        pred[b].append(a)
    for a, bs in succ.items():  # population -> weight -> same population: recurrence
        for b in bs:
            if (
                type(nodes[a]).__name__ in NEURON_NODES
                and isinstance(nodes[b], nir.Linear | nir.Affine)
                and succ[b] == [a]
                and pred[b] == [a]
            ):
                recurrent[a] = b
    skip = set(recurrent.values())
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise SnnkitError(f"NIR graph has {len(inputs)} Input nodes; load takes one")
    order, here = [], inputs[0]
    while True:
        order.append(here)
        if isinstance(nodes[here], nir.Output):
            break
        nxt = [b for b in succ[here] if b not in skip and b != here]
        if len(nxt) != 1:
            what = "ends without an Output" if not nxt else f"branches to {', '.join(nxt)}"
            raise SnnkitError(f"NIR graph {what} at node '{here}'; load takes a chain of layers")
        here = nxt[0]
        if here in order:
            raise SnnkitError(
                f"NIR graph has a cycle through node '{here}' that is not a recurrent weight"
            )
    extra = set(nodes) - set(order) - skip
    if extra:
        raise SnnkitError(
            f"NIR graph nodes {', '.join(sorted(extra))} are not on the input-output chain"
        )
    return order, recurrent


class _Reader:
    """Turns NIR neuron nodes into snnkit neuron specs and their per-neuron quantities."""

    def __init__(self, nodes, order, scheme, reset, step, dt) -> None:
        self.scheme, self.reset = scheme, reset
        first = next((k for k in order if type(nodes[k]).__name__ in NEURON_NODES), None)
        if first is None:
            raise SnnkitError("NIR graph has no neuron node (LIF, CubaLIF, IF, LI, CubaLI)")
        self.step = float(step if step is not None else self._step_of(first, nodes[first]))
        self.dt = float(dt if dt is not None else self.step)

    @staticmethod
    def _step_of(name, node) -> float:
        r = np.asarray(node.r, dtype=np.float64)
        if type(node).__name__ == "IF":
            return float(1 / r.flat[0])
        tau = np.asarray(getattr(node, "tau_mem", getattr(node, "tau", None)), dtype=np.float64)
        return float(tau.flat[0] / r.flat[0])

    def _gain(self, name: str, what: str, value, tau) -> None:
        value, tau = np.asarray(value), np.asarray(tau)
        # the writer's rounding: a few ulps of its float type (float32 for snntorch)
        rtol = max(RTOL, 8 * max(_eps(value), _eps(tau)))
        want = tau.astype(np.float64) / self.step
        if not np.allclose(value.astype(np.float64), want, rtol=rtol, atol=0):
            raise SnnkitError(
                f"NIR node '{name}' has {what} != tau/time_step (time step {self.step:g}): snnkit's "
                "neurons add their input unscaled; scale the weights before it instead"
            )

    def tau(self, name, value) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        return snnkit_tau(value, self.dt, self.step, self.scheme, name)

    def spec(self, name: str, node) -> tuple[NeuronSpec, dict[str, np.ndarray], tuple[int, ...]]:
        kind = type(node).__name__
        for field in ("v_leak", "v_reset"):
            if field in node.__dict__ and np.any(np.asarray(getattr(node, field)) != 0):
                raise SnnkitError(
                    f"NIR node '{name}' ({kind}) has a nonzero {field}; snnkit's neurons rest and "
                    "reset at 0"
                )
        q: dict[str, np.ndarray] = {}
        if kind in ("LIF", "LI"):
            self._gain(name, "r", node.r, node.tau)
            q["tau_mem"] = self.tau(name, node.tau)
        elif kind in ("CubaLIF", "CubaLI"):
            self._gain(name, "r", node.r, node.tau_mem)
            self._gain(name, "w_in", node.w_in, node.tau_syn)
            q["tau_mem"] = self.tau(name, node.tau_mem)
            q["tau_syn"] = self.tau(name, node.tau_syn)
        elif kind == "IF":
            self._gain(name, "r", node.r, np.ones_like(np.asarray(node.r, dtype=np.float64)))
        if kind in ("LIF", "CubaLIF", "IF"):
            q["threshold"] = np.asarray(node.v_threshold, dtype=np.float64)
        shape = np.asarray(node.v_threshold if "v_threshold" in node.__dict__ else node.r).shape
        q = {k: np.broadcast_to(v, shape) for k, v in q.items()}
        fixed = {k: float(v.flat[0]) for k, v in q.items()}
        spec_cls = {"LIF": LIF, "CubaLIF": LIF, "IF": IF}.get(kind, LI)
        options = {"reset": self.reset} if spec_cls is not LI else {}
        try:
            spec = spec_cls(dt=self.dt, **fixed, **options)
        except SnnkitError as exc:
            raise SnnkitError(f"NIR node '{name}' ({kind}): {exc}") from None
        marked = str(_meta(node).get("snnkit.trained", "")).split(",")
        trained = {k: v for k, v in q.items() if k in marked or np.any(v != v.flat[0])}
        return spec, trained, tuple(int(s) for s in shape)


def _eps(array: np.ndarray) -> float:
    return float(np.finfo(array.dtype).eps) if np.issubdtype(array.dtype, np.floating) else 0.0


def _meta(node) -> dict:
    meta = getattr(node, "metadata", None) or {}
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in meta.items()}


def _scalar(meta: dict, key: str):
    value = meta.get(key)
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    return value


def load(
    graph,
    grad: str = "exodus",
    *,
    scheme: str | None = None,
    reset: str | None = None,
    time_step: float | None = None,
    dt: float | None = None,
    surrogate=None,
    registry=None,
) -> Network:
    """A :class:`Network` of ``grad``'s neurons from a NIR graph (or a ``.nir`` file path).

    ``scheme`` (exact/euler) and ``time_step``: the discretisation the graph was written for
    (default: what snnkit wrote in its metadata, else exact, and the step from the first
    neuron's tau/r); ``reset``: subtract or zero (NIR's continuous-time reset is the same
    for both; default: the metadata's, else subtract); ``dt``: the snnkit neurons' dt
    (default: the exporter's, else the time step). Unsupported nodes are a one-line error.
    """
    nir = require_nir()
    if isinstance(graph, str) or hasattr(graph, "__fspath__"):
        try:
            graph = nir.read(graph)
        except (OSError, KeyError, ValueError) as exc:
            raise SnnkitError(f"cannot read NIR file {graph}: {exc}") from None
    from snnkit.registry import get_registry

    method = (registry or get_registry()).gradient(grad)
    if method.representation != "raster":
        raise SnnkitError(
            f"--grad {grad} is an event method; NIR graphs load into raster methods "
            "(see docs/nir.md)"
        )
    meta = {k: _scalar(graph.metadata or {}, k) for k in (graph.metadata or {})}
    scheme = scheme or meta.get("snnkit.scheme") or "exact"
    _check_choice("scheme", scheme, SCHEMES)
    nodes, edges = _inline(graph, nir)
    order, recurrent = _chain(nodes, edges, nir)
    neuron_meta = [_meta(nodes[k]) for k in order if type(nodes[k]).__name__ in NEURON_NODES]
    if reset is None:
        described = next(
            (m.get("snnkit.neuron", "") for m in neuron_meta if "snnkit.neuron" in m), ""
        )
        reset = "zero" if "reset='zero'" in described else "subtract"
    _check_choice("reset", reset, RESETS)
    reader = _Reader(
        nodes,
        order,
        scheme,
        reset,
        time_step if time_step is not None else meta.get("snnkit.time_step"),
        dt if dt is not None else meta.get("snnkit.dt"),
    )
    modules: list[nn.Module] = []
    input_node = nodes[order[0]]
    in_shape = tuple(int(s) for s in np.asarray(input_node.input_type["input"]).reshape(-1))
    if len(in_shape) > 1 and _meta(input_node).get("snnkit.flat_input"):
        modules.append(TimeDistributed(nn.Unflatten(1, in_shape)))
    k = 1
    while k < len(order) - 1:
        name, node = order[k], nodes[order[k]]
        kind = type(node).__name__
        nxt = nodes[order[k + 1]]
        if kind in ("Linear", "Affine") and type(nxt).__name__ in NEURON_NODES:
            synapse = _dense(node)
            neurons = _population(method, reader, order[k + 1], nxt, recurrent, nodes, surrogate)
            if neurons.spiking:
                modules.append(SpikingLayer(synapse, neurons))
            else:
                readout = Readout(synapse.in_features, synapse.out_features, neurons.neuron)
                readout.synapse, readout.neurons = synapse, neurons
                modules.append(readout)
            k += 2
            continue
        if kind in ("Linear", "Affine"):
            modules.append(_dense(node))
        elif kind in NEURON_NODES:
            modules.append(_population(method, reader, name, node, recurrent, nodes, surrogate))
        elif kind in ("Conv1d", "Conv2d"):
            modules.append(TimeDistributed(_conv(node)))
        elif kind in ("AvgPool2d", "SumPool2d"):
            modules.append(
                TimeDistributed(
                    nn.AvgPool2d(
                        tuple(int(s) for s in np.asarray(node.kernel_size).reshape(-1)),
                        tuple(int(s) for s in np.asarray(node.stride).reshape(-1)),
                        tuple(int(s) for s in np.asarray(node.padding).reshape(-1)),
                        divisor_override=1 if kind == "SumPool2d" else None,
                    )
                )
            )
        elif kind == "Flatten":
            end = int(node.end_dim)  # NIR counts the dims of one sample, torch the batch too
            modules.append(TimeDistributed(nn.Flatten(int(node.start_dim) + 1, end + (end >= 0))))
        else:
            raise SnnkitError(
                f"NIR node '{name}' is a {kind}, which snnkit cannot load; supported: {SUPPORTED}"
            )
        k += 1
    network = Network(*modules)
    dtype = _dtype(nodes)
    network.to(dtype)
    _fill(network, nodes, order, recurrent)
    return network


def _dtype(nodes) -> torch.dtype:
    weights = [np.asarray(n.weight) for n in nodes.values() if hasattr(n, "weight")]
    return torch.float64 if any(w.dtype == np.float64 for w in weights) else torch.float32


def _dense(node) -> Dense:
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise SnnkitError(
            f"NIR {type(node).__name__} weight has shape {weight.shape}; load takes 2-D"
        )
    dense = Dense(weight.shape[1], weight.shape[0], bias=hasattr(node, "bias"))
    dense._nir = node  # filled after the network has its dtype
    return dense


def _conv(node) -> nn.Module:
    weight = np.asarray(node.weight)
    cls = nn.Conv2d if weight.ndim == 4 else nn.Conv1d
    padding = node.padding
    padding = (
        padding if isinstance(padding, str) else tuple(np.asarray(padding).reshape(-1).tolist())
    )
    conv = cls(
        weight.shape[1] * int(node.groups),
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=tuple(np.asarray(node.stride).reshape(-1).tolist()),
        padding=padding if isinstance(padding, str) or len(padding) > 1 else padding[0],
        dilation=tuple(np.asarray(node.dilation).reshape(-1).tolist()),
        groups=int(node.groups),
        bias=bool(np.any(np.asarray(node.bias) != 0)),
    )
    conv._nir = node
    return conv


def _population(method, reader, name, node, recurrent, nodes, surrogate) -> nn.Module:
    spec, trained, shape = reader.spec(name, node)
    if not spec.spiking:
        module = Integrator(spec, shape, train_tau=bool(trained))
    else:
        rec = name in recurrent
        if rec and len(shape) != 1:
            raise SnnkitError(
                f"NIR node '{name}': a recurrent population must be flat, not {shape}"
            )
        method.check(spec)
        module = method.neuron(
            spec, shape if len(shape) > 1 else shape[0], surrogate=surrogate, recurrent=rec,
            train=tuple(trained),
        )  # fmt: skip
        if rec:
            w = nodes[recurrent[name]]
            if hasattr(w, "bias") and np.any(np.asarray(w.bias) != 0):
                raise SnnkitError(
                    f"NIR node '{recurrent[name]}': a recurrent weight has no bias in snnkit"
                )
            module._nir_recurrent = np.asarray(w.weight)
    module._nir_quantities = trained
    return module


def _fill(network: Network, nodes, order, recurrent) -> None:
    """Copy the graph's weights and per-neuron quantities into the built modules."""
    with torch.no_grad():
        for module in network.modules():
            node = module.__dict__.pop("_nir", None)
            if node is not None:
                module.weight.copy_(torch.from_numpy(np.asarray(node.weight)))
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(torch.from_numpy(np.asarray(node.bias)))
            rec = module.__dict__.pop("_nir_recurrent", None)
            if rec is not None:
                module.recurrent_weight.copy_(torch.from_numpy(rec))
            quantities = module.__dict__.pop("_nir_quantities", None)
            if quantities:
                params = module.params
                for key, values in quantities.items():
                    param = getattr(params, key)
                    param.copy_(torch.from_numpy(np.array(values)).reshape(param.shape))
