"""Torch modules: neuron modules, synapses, layers and networks (time-first ``[T, B, ...]``).

The unit is the **neuron module** (:class:`SpikingNeuron`): input current
``[T, B, *features]`` of any trailing shape -> spikes of the same shape, through one
gradient method's dynamics. A method subclasses it and implements :meth:`SpikingNeuron.
dynamics` on the flattened ``[T, B, N]`` current. Synapses are ordinary torch modules:
:class:`Dense` for ``[T, B, in]``, and any stateless module (convolution, pooling, batch
norm, dropout, flatten) through :class:`TimeDistributed`, which folds time into the batch.
:class:`SpikingLayer` is a Dense synapse feeding a neuron module; :class:`Readout` a Dense
synapse feeding leaky integrators (:class:`Integrator`); :class:`Network` is a sequential
container that also reports every spiking module's output.

Neuron state lives on the module instance (never shared between networks), carries over
between calls so a long sequence can be fed in chunks, and is cleared with
``reset_state()`` (:func:`reset_state` does it for any model, e.g. your own
``torch.nn.Sequential``; :class:`Network` and the trainer do it for every batch).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from snnkit import neurons
from snnkit.errors import SnnkitError
from snnkit.events import check_raster
from snnkit.kernels import check_backend
from snnkit.neurons import LI, LIFState, LIState, NeuronSpec
from snnkit.surrogates import Exponential, Surrogate

SHARING = ("neuron", "channel", "layer")


def parse_shape(shape: str | list[int] | tuple[int, ...]) -> list[int]:
    """``"5-120-3"`` -> ``[5, 120, 3]`` (at least input and output sizes, all >= 1)."""
    if isinstance(shape, str):
        try:
            sizes = [int(part) for part in shape.strip().split("-")]
        except ValueError:
            raise SnnkitError(
                f"bad network shape {shape!r}: use layer sizes joined by '-', e.g. 5-120-3"
            ) from None
    else:
        sizes = list(shape)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
            raise SnnkitError(f"bad network shape {shape!r}: layer sizes must be integers")
    if len(sizes) < 2 or min(sizes) < 1:
        raise SnnkitError(f"bad network shape {shape!r}: need >= 2 sizes, each >= 1, e.g. 5-120-3")
    return sizes


def feature_shape(shape: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """``7`` -> ``(7,)``, ``(2, 8, 8)`` -> itself, None -> None (inferred on first call)."""
    if shape is None:
        return None
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise SnnkitError(f"neuron shape {shape!r}: give positive integers, e.g. 128 or (16, 8, 8)")
    return dims


# -- parameters ------------------------------------------------------------------------------


class NeuronParameters(nn.Module):
    """A population's neuron quantities (``spec.quantities()``), fixed or trained.

    A fixed quantity stays the spec's Python float and is materialised on use in the
    module's dtype, so a float64 layer sees the spec's values exactly. A trained one is an
    ``nn.Parameter`` of one value per neuron (``sharing="neuron"``, the feature shape), per
    channel (``"channel"``: the first feature axis) or per population (``"layer"``).
    Without a known feature shape the parameters are created on the first call
    (:meth:`build`), like torch's lazy modules. :meth:`coefficients` gives what a step
    reads, each ``[N]`` over the flattened features.
    """

    def __init__(
        self,
        neuron: NeuronSpec,
        shape: int | Sequence[int] | None = None,
        *,
        train: Iterable[str] = (),
        train_tau: bool = False,
        train_threshold: bool = False,
        sharing: str = "neuron",
    ) -> None:
        super().__init__()
        if sharing not in SHARING:
            raise SnnkitError(f"sharing={sharing!r}: use one of {', '.join(SHARING)}")
        for option, value in (("train_tau", train_tau), ("train_threshold", train_threshold)):
            if not isinstance(value, bool):
                raise SnnkitError(f"{option} must be true or false, got {value!r}")
        self.neuron, self.sharing = neuron, sharing
        quantities = neuron.quantities()
        trained = set(train) | self._requested(neuron, quantities, train_tau, train_threshold)
        for name in sorted(trained):
            if name not in quantities or name not in neuron.trainable:
                options = ", ".join(q for q in neuron.trainable if q in quantities) or "none"
                raise SnnkitError(
                    f"neuron '{neuron.kind}' cannot train {name}; its trainable quantities "
                    f"are: {options}"
                )
            if math.isinf(quantities[name]):
                raise SnnkitError(f"cannot train {name}: it is infinite for neuron '{neuron.kind}'")
        # follows .to(dtype/device), so fixed values come out like the rest of the module
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self.constants = {k: float(v) for k, v in quantities.items() if k not in trained}
        self.initial = {k: float(v) for k, v in quantities.items() if k in trained}
        self.features: tuple[int, ...] | None = None
        for name in self.initial:
            self.register_parameter(name, nn.parameter.UninitializedParameter())
        if shape is not None:
            self.build(feature_shape(shape))

    @staticmethod
    def _requested(neuron, quantities, train_tau: bool, train_threshold: bool) -> set[str]:
        out = set()
        if train_tau:
            taus = {q for q in quantities if q.startswith("tau_") and q in neuron.trainable}
            if math.isinf(quantities.get("tau_mem", 0.0)) or not taus:
                raise SnnkitError(
                    f"train_tau needs a leaky neuron (neuron '{neuron.kind}' has no finite, "
                    "trainable time constant)"
                )
            out |= {q for q in taus if math.isfinite(quantities[q])}
        if train_threshold:
            if "threshold" not in quantities:
                raise SnnkitError(
                    f"train_threshold needs a spiking neuron with a threshold, not '{neuron.kind}'"
                )
            out.add("threshold")
        return out

    def shape_of(self, features: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of a trained quantity for neurons of ``features`` under this sharing."""
        if self.sharing == "layer":
            return (1,)
        if self.sharing == "channel":
            return (features[0],) + (1,) * (len(features) - 1)
        return tuple(features)

    def build(self, features: tuple[int, ...]) -> None:
        """Fix the feature shape; create the trained quantities (filled with their values)."""
        if self.features is not None:
            if tuple(features) != self.features:
                raise SnnkitError(
                    f"neurons of shape {tuple(features)} fed to a population of shape "
                    f"{self.features}; check the layer before it"
                )
            return
        self.features = tuple(features)
        want = self.shape_of(self.features)
        for name, value in self.initial.items():
            param = self._parameters[name]
            if isinstance(param, nn.parameter.UninitializedParameter):
                param.materialize(want, device=self._anchor.device, dtype=self._anchor.dtype)
                with torch.no_grad():
                    param.fill_(value)
            elif torch.broadcast_shapes(param.shape, self.features) != self.features:
                raise SnnkitError(
                    f"trained {name} has shape {tuple(param.shape)}, which does not fit "
                    f"neurons of shape {self.features}"
                )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # lazy parameters take the stored shape (a checkpoint loads before the first call)
        for name, param in self._parameters.items():
            key = prefix + name
            if isinstance(param, nn.parameter.UninitializedParameter) and key in state_dict:
                param.materialize(
                    state_dict[key].shape, device=self._anchor.device, dtype=self._anchor.dtype
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def size(self) -> int:
        if self.features is None:
            raise SnnkitError("the neuron population's shape is not known yet: call it once")
        return math.prod(self.features)

    def value(self, name: str) -> torch.Tensor:
        """Quantity ``name`` per neuron, ``[N]`` (for statistics and inspection)."""
        if name in self.constants:
            return self._flat(self.constants[name], self._anchor)
        return self._flat(self._parameters[name], self._anchor)

    def _flat(self, x: Any, like: torch.Tensor) -> Any:
        if x is None:
            return None
        if isinstance(x, torch.Tensor):
            if x.shape != (self.size,):
                x = x.expand(self.features).reshape(self.size)
            return x.to(like.dtype)
        return torch.full((self.size,), float(x), dtype=like.dtype, device=like.device)

    def coefficients(self, like: torch.Tensor | None = None) -> Any:
        """``neuron.coefficients`` of the quantities, each field ``[N]`` in ``like``'s dtype
        and device (the module's without ``like``); fields that are None stay None."""
        like = self._anchor if like is None else like
        q = {**self.constants, **{k: self._parameters[k] for k in self.initial}}
        c = self.neuron.coefficients(q)
        done: dict[int, Any] = {}  # a quantity used twice (m = theta) stays one tensor

        def flat(x):
            if id(x) not in done:
                done[id(x)] = self._flat(x, like)
            return done[id(x)]

        if isinstance(c, dict):
            return {k: flat(x) for k, x in c.items()}
        return type(c)(*(flat(x) for x in c))

    def __getattr__(self, name: str):
        # p.tau_mem, p.threshold: the trained parameter, or the fixed value per neuron
        constants = self.__dict__.get("constants", {})
        if name in constants:
            return self.value(name)
        return super().__getattr__(name)

    def extra_repr(self) -> str:
        trained = ", ".join(self.initial) or "nothing"
        return f"trains {trained} (per {self.sharing}), features={self.features}"


# -- neuron modules ------------------------------------------------------------------------


def _check_current(x: torch.Tensor, name: str, features: tuple[int, ...] | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise SnnkitError(f"{name} must be [T, B, *features] (time-first, at least 3-D), got {got}")
    if not x.is_floating_point():
        raise SnnkitError(
            f"{name} must have a floating dtype, got {x.dtype}; convert with .float()"
        )
    if features is not None and tuple(x.shape[2:]) != features:
        raise SnnkitError(
            f"{name} has features {tuple(x.shape[2:])} but the population has {features}; "
            "check the layer before it"
        )


class SpikingNeuron(nn.Module):
    """A population of spiking neurons: current ``[T, B, *features]`` -> spikes, same shape.

    ``shape`` is the feature shape (an int for a flat layer; None: taken from the first
    call). Options: ``surrogate``, ``recurrent`` (a weight ``[N, N]`` feeding last step's
    spikes back into the current; needs ``shape``), ``train_tau``/``train_threshold`` (or
    ``train=("name", ...)`` for any trainable quantity of the neuron) and ``sharing`` of
    trained quantities (``"neuron"``, ``"channel"``, ``"layer"``), and ``backend``
    (``"auto"`` or one of :attr:`backends`, where the method's kernels run; see
    :func:`snnkit.kernels.select`). Subclasses implement :meth:`dynamics`.
    """

    spiking: ClassVar[bool] = True
    # where this module's dynamics can run: "cuda"/"cpu" compiled kernels, "torch" code
    backends: ClassVar[tuple[str, ...]] = ("torch",)

    def __init__(
        self,
        neuron: NeuronSpec,
        shape: int | Sequence[int] | None = None,
        *,
        surrogate: Surrogate | None = None,
        recurrent: bool = False,
        train: Iterable[str] = (),
        train_tau: bool = False,
        train_threshold: bool = False,
        sharing: str = "neuron",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.backend = check_backend(backend, self.backends, type(self).__name__)
        if not neuron.spiking:
            raise SnnkitError(f"a spiking layer needs a spiking neuron, got '{neuron.kind}'")
        self.neuron = neuron
        self.surrogate = surrogate if surrogate is not None else Exponential()
        self.params = NeuronParameters(
            neuron,
            shape,
            train=train,
            train_tau=train_tau,
            train_threshold=train_threshold,
            sharing=sharing,
        )
        self.recurrent_weight: nn.Parameter | None = None
        if recurrent:
            if shape is None:
                raise SnnkitError("a recurrent population needs its shape (the number of neurons)")
            n = self.params.size
            theta = neuron.quantities().get("threshold", 1.0)
            self.recurrent_weight = nn.Parameter(torch.empty(n, n))
            nn.init.normal_(self.recurrent_weight, 0.0, 0.1 * theta / math.sqrt(n))
        self.state: Any = None

    @property
    def features(self) -> tuple[int, ...] | None:
        return self.params.features

    @property
    def recurrent(self) -> bool:
        return self.recurrent_weight is not None

    def reset_state(self) -> None:
        self.state = None

    def detach_state(self) -> None:
        """Keep the state's values but cut the gradient (truncated BPTT)."""
        if self.state is not None:
            self.state = neurons.detach_state(self.state)

    def initial_state(self, current: torch.Tensor) -> Any:
        """The carried state, or the neuron's zero state for ``current`` ``[T, B, N]``."""
        batch = current.shape[1]
        if self.state is not None:
            carried = next(s for s in self.state if s is not None)
            if carried.shape[0] != batch:
                raise SnnkitError(
                    f"carried state has batch size {carried.shape[0]} but the input has "
                    f"{batch}; call reset_state() before feeding a new batch"
                )
            return self.state
        return self.neuron.initial_state(current.new_zeros(current.shape[1:]))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        _check_current(current, f"input of {type(self).__name__}", self.features)
        self.params.build(tuple(current.shape[2:]))
        steps, batch = current.shape[:2]
        flat = current.reshape(steps, batch, self.params.size)
        spikes, self.state = self.dynamics(flat, self.initial_state(flat))
        return spikes.reshape(current.shape)

    @abstractmethod
    def dynamics(self, current: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Simulate the neurons on input current ``[T, B, N]`` from ``state``.

        Returns the spikes ``[T, B, N]`` and the state after the last step. A recurrent
        population adds ``a_{t-1} @ recurrent_weight.T`` to the current of step t.
        """

    def extra_repr(self) -> str:
        rec = ", recurrent" if self.recurrent else ""
        return (
            f"{self.features}{rec}, {self.neuron.describe()}, surrogate={self.surrogate.describe()}"
        )


def leaky_integrate(
    x: torch.Tensor, tau: torch.Tensor, dt: float, init: torch.Tensor | None = None
) -> torch.Tensor:
    """y_t = exp(-dt/tau) * y_{t-1} + x_t over time-first ``x[T, B, N]``, per-neuron ``tau[N]``.

    Computed as one matmul with the lower-triangular decay matrix (no Python loop),
    differentiable in ``x``, ``tau`` and ``init`` (the value before step 0).
    """
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device, dtype=x.dtype)
    lag = t[:, None] - t[None, :]  # [T, T]: t - s
    rate = (dt / tau).to(x.dtype)  # [N]
    causal = (lag >= 0)[:, :, None]
    exponent = torch.where(causal, -lag[:, :, None] * rate, torch.full_like(rate, -math.inf))
    kernel = torch.exp(exponent)  # [T, S, N]
    y = torch.einsum("tsn,sbn->tbn", kernel, x)
    if init is not None:
        y = y + torch.exp(-(t[:, None] + 1) * rate)[:, None, :] * init
    return y


class Integrator(nn.Module):
    """Non-spiking leaky integrators (an LI neuron): current ``[T, B, *features]`` -> the
    membrane trace of the same shape; ``train_tau`` trains its time constants."""

    spiking: ClassVar[bool] = False

    def __init__(
        self,
        neuron: NeuronSpec | None = None,
        shape: int | Sequence[int] | None = None,
        *,
        train_tau: bool = False,
        sharing: str = "neuron",
    ) -> None:
        super().__init__()
        neuron = neuron if neuron is not None else LI()
        if not isinstance(neuron, LI):
            raise SnnkitError(
                f"a readout takes a non-spiking leaky integrator (li), got '{neuron.kind}'; "
                "use a spiking layer instead"
            )
        self.neuron = neuron
        self.params = NeuronParameters(neuron, shape, train_tau=train_tau, sharing=sharing)
        self.state: Any = None

    def reset_state(self) -> None:
        self.state = None

    def detach_state(self) -> None:
        if self.state is not None:
            self.state = neurons.detach_state(self.state)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        _check_current(current, "input of the readout", self.params.features)
        self.params.build(tuple(current.shape[2:]))
        steps, batch = current.shape[:2]
        flat = current.reshape(steps, batch, self.params.size)
        v0, i0 = self.state if self.state is not None else (None, None)
        if v0 is not None and v0.shape[0] != batch:
            raise SnnkitError("readout: carried state has another batch size; call reset_state()")
        tau = {
            k: self.params.value(k).to(flat)
            for k in ("tau_mem", "tau_syn")
            if k in self.neuron.quantities()
        }
        if "tau_syn" in tau:
            flat = leaky_integrate(flat, tau["tau_syn"], self.neuron.dt, i0)
        v = leaky_integrate(flat, tau["tau_mem"], self.neuron.dt, v0)
        self.state = LIState(v[-1], flat[-1] if "tau_syn" in tau else None)
        return v.reshape(current.shape)

    def extra_repr(self) -> str:
        return f"{self.params.features}, {self.neuron.describe()}"


# -- synapses and layers ---------------------------------------------------------------------


class Dense(nn.Module):
    """Dense synapses ``x[T, B, in] @ weight.T (+ bias)``, weights ~ N(0, std^2)
    (default ``std = 1/sqrt(in)``)."""

    def __init__(
        self, in_features: int, out_features: int, *, bias: bool = False, std: float | None = None
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, 0.0, std if std is not None else 1 / math.sqrt(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = torch.matmul(x, self.weight.t())
        return current if self.bias is None else current + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, bias={self.bias is not None}"


class TimeDistributed(nn.Module):
    """Applies a stateless torch module to every step of ``[T, B, ...]`` by folding time
    into the batch (``[T*B, ...]``): convolutions, pooling, batch norm (statistics over
    steps and samples), dropout (a fresh mask per step), flatten, linear."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim < 3:
            raise SnnkitError(
                f"TimeDistributed({type(self.module).__name__}) takes [T, B, ...] input, got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        steps, batch = x.shape[:2]
        y = self.module(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


class _SynapseNeurons(nn.Module):
    """A Dense synapse feeding a population (``synapse`` and ``neurons`` submodules)."""

    def __init__(self, synapse: Dense, neurons: nn.Module) -> None:
        super().__init__()
        self.synapse, self.neurons = synapse, neurons

    @property
    def neuron(self) -> NeuronSpec:
        return self.neurons.neuron

    @property
    def in_features(self) -> int:
        return self.synapse.in_features

    @property
    def out_features(self) -> int:
        return self.synapse.out_features

    @property
    def weight(self) -> nn.Parameter:
        return self.synapse.weight

    @property
    def bias(self) -> nn.Parameter | None:
        return self.synapse.bias

    @property
    def params(self) -> NeuronParameters:
        return self.neurons.params

    @property
    def state(self):
        return self.neurons.state

    def reset_state(self) -> None:
        self.neurons.reset_state()

    def detach_state(self) -> None:
        self.neurons.detach_state()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, f"input of {type(self).__name__}", self.in_features)
        return self.neurons(self.synapse(x))


class SpikingLayer(_SynapseNeurons):
    """Dense synapses ``in -> out`` feeding a spiking population (:class:`SpikingNeuron`).

    ``weight_gain`` scales the initial weights: N(0, (gain * theta)^2 / in) feed-forward,
    a tenth of that (per ``out``) for a recurrent weight.
    """

    spiking: ClassVar[bool] = True

    def __init__(self, synapse: Dense, neurons: SpikingNeuron, weight_gain: float = 1.0) -> None:
        super().__init__(synapse, neurons)
        if neurons.recurrent_weight is not None and weight_gain != 1.0:
            with torch.no_grad():
                neurons.recurrent_weight.mul_(weight_gain)

    @classmethod
    def of(
        cls,
        method,
        neuron: NeuronSpec,
        in_features: int,
        out_features: int,
        *,
        weight_gain: float = 1.0,
        bias: bool = False,
        **options,
    ) -> SpikingLayer:
        """Dense synapses (weights ~ N(0, (weight_gain * threshold)^2 / in_features)) into
        ``method.neuron(neuron, out_features, **options)``."""
        std = dense_std(neuron, in_features, weight_gain)
        synapse = Dense(in_features, out_features, bias=bias, std=std)
        return cls(synapse, method.neuron(neuron, out_features, **options), weight_gain)

    @property
    def recurrent(self) -> bool:
        return self.neurons.recurrent

    @property
    def recurrent_weight(self) -> nn.Parameter | None:
        return self.neurons.recurrent_weight

    @property
    def surrogate(self) -> Surrogate:
        return self.neurons.surrogate


class Readout(_SynapseNeurons):
    """Dense synapses into non-spiking leaky integrators; output is the voltage ``[T, B, C]``."""

    spiking: ClassVar[bool] = False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        neuron: NeuronSpec | None = None,
        *,
        train_tau: bool = False,
    ) -> None:
        synapse = Dense(in_features, out_features)
        super().__init__(synapse, Integrator(neuron, out_features, train_tau=train_tau))


def dense_std(neuron: NeuronSpec, fan_in: int, gain: float = 1.0) -> float:
    """The initial weight std into ``neuron``s: gain * threshold / sqrt(fan_in)."""
    return gain * neuron.quantities().get("threshold", 1.0) / math.sqrt(fan_in)


# -- networks ---------------------------------------------------------------------------------


@dataclass
class NetworkOutput:
    """What a forward pass returns: the last module's output (``[T, B, C]``) and the
    output of every other spiking module (hidden spikes)."""

    output: torch.Tensor
    hidden_spikes: list[torch.Tensor]


def reset_state(model: nn.Module) -> None:
    """Clear the carried state of every stateful module in ``model`` (call per batch); works
    on any model that contains snnkit modules, e.g. your own ``torch.nn.Sequential``."""
    _each(model, "reset_state")


def detach_state(model: nn.Module) -> None:
    """Keep every carried state's values in ``model`` but cut their gradient."""
    _each(model, "detach_state")


def _each(model: nn.Module, method: str) -> None:
    for module in model.modules():
        if not isinstance(module, Network) and callable(getattr(module, method, None)):
            getattr(module, method)()


class Network(nn.Sequential):
    """Modules applied in order to ``[T, B, ...]``; returns a :class:`NetworkOutput` with
    the last module's output and the spikes of every other spiking module.

    Mix neuron modules of any method with synapses::

        Network(TimeDistributed(nn.Conv2d(2, 16, 5)), exodus.neuron(LIF()),
                TimeDistributed(nn.AvgPool2d(2)), TimeDistributed(nn.Flatten()),
                Readout(16 * 15 * 15, 10))
    """

    def forward(self, x: torch.Tensor) -> NetworkOutput:  # type: ignore[override]
        hidden = []
        modules = list(self)
        for module in modules:
            x = module(x)
            if getattr(module, "spiking", False) and module is not modules[-1]:
                hidden.append(x)
        return NetworkOutput(x, hidden)

    @property
    def layers(self) -> list[nn.Module]:
        """Every module but the output."""
        return list(self)[:-1]

    @property
    def output(self) -> nn.Module:
        """The last module: a readout (voltage trace) or a spiking layer (spikes)."""
        return self[-1]

    @property
    def output_kind(self) -> str:
        """'spikes' for a spiking output module, else 'trace'."""
        return "spikes" if getattr(self.output, "spiking", False) else "trace"

    def reset_state(self) -> None:
        reset_state(self)

    def detach_state(self) -> None:
        detach_state(self)


__all__ = [
    "Dense",
    "Integrator",
    "LIFState",
    "Network",
    "NetworkOutput",
    "NeuronParameters",
    "Readout",
    "SpikingLayer",
    "SpikingNeuron",
    "TimeDistributed",
    "dense_std",
    "detach_state",
    "feature_shape",
    "leaky_integrate",
    "parse_shape",
    "reset_state",
]
