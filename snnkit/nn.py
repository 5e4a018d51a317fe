"""Torch modules shared by all raster methods: spiking layers, the LI readout, networks.

Layout is time-first: a layer maps ``x[T, B, in]`` to ``spikes[T, B, out]``. Neuron
state lives on the module instance (never shared between networks), carries over
between calls so a long sequence can be fed in chunks, and is cleared with
``reset_state()`` (``Network`` does it at the start of every batch in training).
A gradient method subclasses :class:`SpikingLayer` and implements ``dynamics``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.events import check_raster
from snnkit.neurons import LI, NeuronSpec
from snnkit.surrogates import Exponential, Surrogate


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


@dataclass
class LIFState:
    """Carried neuron state: post-reset membrane ``v``, synaptic current ``i``, last spikes ``a``.

    All ``[B, N]``; ``i`` is None without a synaptic stage.
    """

    v: torch.Tensor
    i: torch.Tensor | None
    a: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, n: int, synaptic: bool, like: torch.Tensor) -> LIFState:
        z = like.new_zeros(batch, n)
        return cls(z, z.clone() if synaptic else None, z.clone())

    def detach(self) -> LIFState:
        return LIFState(
            self.v.detach(), None if self.i is None else self.i.detach(), self.a.detach()
        )


class NeuronParameters(nn.Module):
    """Per-neuron time constants and threshold of a layer, trainable on request.

    A trainable quantity is an ``nn.Parameter`` of shape ``[N]``; ``tau_mem``/``tau_syn``
    are stored as time constants so alpha = exp(-dt/tau) stays in (0, 1] under training.
    A fixed one is kept as the spec's Python float and materialised on use in the
    module's dtype, so a float64 layer sees the spec's values exactly (never a float32
    rounding of them). Attribute access (``p.tau_mem``) gives a ``[N]`` tensor either way.
    """

    QUANTITIES = ("tau_mem", "tau_syn", "threshold")

    def __init__(
        self, neuron: NeuronSpec, n: int, *, train_tau: bool = False, train_threshold: bool = False
    ) -> None:
        super().__init__()
        self.dt, self.n = neuron.dt, n
        tau_mem = getattr(neuron, "tau_mem", math.inf)
        if train_tau and math.isinf(tau_mem):
            raise SnnkitError("train_tau needs a leaky neuron (tau_mem is infinite for IF)")
        if train_threshold and not neuron.spiking:
            raise SnnkitError("train_threshold needs a spiking neuron")
        # follows .to(dtype/device), so fixed values come out like the rest of the module
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self.constants: dict[str, float] = {}
        values = {
            "tau_mem": (tau_mem, train_tau),
            "tau_syn": (getattr(neuron, "tau_syn", None), train_tau),
            "threshold": (getattr(neuron, "threshold", None), train_threshold),
        }
        for name, (value, trainable) in values.items():
            if value is None:
                continue
            if trainable:
                self.register_parameter(name, nn.Parameter(torch.full((n,), float(value))))
            else:
                self.constants[name] = float(value)
        self.fixed_subtract = getattr(neuron, "subtract", None)
        self._built = True

    def __getattr__(self, name: str):
        constants = self.__dict__.get("constants", {})
        if name in constants:
            return self._full(constants[name])
        if name in self.QUANTITIES and self.__dict__.get("_built"):
            # a trainable parameter, or None where the neuron lacks it (tau_syn without synapse)
            return self.__dict__["_parameters"].get(name)
        return super().__getattr__(name)

    def _full(self, value: float, like: torch.Tensor | None = None) -> torch.Tensor:
        ref = self._anchor if like is None else like
        return torch.full((self.n,), value, dtype=ref.dtype, device=ref.device)

    def _decay(self, name: str, like: torch.Tensor | None) -> torch.Tensor | None:
        if name in self.constants:
            return self._full(math.exp(-self.dt / self.constants[name]), like)
        tau = self._parameters.get(name)
        return None if tau is None else torch.exp(-self.dt / tau)

    def alpha(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """Membrane decay per step, ``[N]`` (1 for IF), in ``like``'s dtype if given."""
        return self._decay("tau_mem", like)

    def beta(self, like: torch.Tensor | None = None) -> torch.Tensor | None:
        """Synaptic decay per step, ``[N]``, or None without a synaptic stage."""
        return self._decay("tau_syn", like)

    def theta(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """The threshold, ``[N]``."""
        if "threshold" in self.constants:
            return self._full(self.constants["threshold"], like)
        return self._parameters["threshold"]

    def reset_amount(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """m: the fixed subtract value, else the (possibly trained) threshold."""
        if self.fixed_subtract is None:
            return self.theta(like)
        return self._full(self.fixed_subtract, like)


class SpikingLayer(nn.Module):
    """Synapses (``weight``, optional ``recurrent_weight``) feeding spiking neurons.

    Subclasses implement :meth:`dynamics`, the neuron simulation (and its gradient).
    """

    def __init__(
        self,
        neuron: NeuronSpec,
        in_features: int,
        out_features: int,
        *,
        recurrent: bool = False,
        surrogate: Surrogate | None = None,
        train_tau: bool = False,
        train_threshold: bool = False,
        weight_gain: float = 1.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if not neuron.spiking:
            raise SnnkitError(f"a spiking layer needs a spiking neuron, got '{neuron.kind}'")
        self.neuron = neuron
        self.in_features, self.out_features = in_features, out_features
        self.surrogate = surrogate if surrogate is not None else Exponential()
        self.params = NeuronParameters(
            neuron, out_features, train_tau=train_tau, train_threshold=train_threshold
        )
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.recurrent_weight = (
            nn.Parameter(torch.empty(out_features, out_features)) if recurrent else None
        )
        self.weight_gain = weight_gain
        self.reset_parameters()
        self.state: LIFState | None = None

    @property
    def recurrent(self) -> bool:
        return self.recurrent_weight is not None

    def reset_parameters(self) -> None:
        """Weights ~ N(0, (gain * threshold)^2 / fan_in); recurrent weights a tenth of that."""
        theta = getattr(self.neuron, "threshold", 1.0)
        std = self.weight_gain * theta / math.sqrt(self.in_features)
        nn.init.normal_(self.weight, 0.0, std)
        if self.recurrent_weight is not None:
            nn.init.normal_(
                self.recurrent_weight,
                0.0,
                0.1 * self.weight_gain * theta / math.sqrt(self.out_features),
            )

    def reset_state(self) -> None:
        self.state = None

    def detach_state(self) -> None:
        """Keep the state's values but cut the gradient (truncated BPTT)."""
        if self.state is not None:
            self.state = self.state.detach()

    def initial_state(self, x: torch.Tensor) -> LIFState:
        batch = x.shape[1]
        if self.state is not None:
            if self.state.v.shape[0] != batch:
                raise SnnkitError(
                    f"carried state has batch size {self.state.v.shape[0]} but the input has "
                    f"{batch}; call reset_state() before feeding a new batch"
                )
            return self.state
        return LIFState.zeros(batch, self.out_features, self.params.tau_syn is not None, x)

    def synaptic_current(self, x: torch.Tensor) -> torch.Tensor:
        """``x[T, B, in] @ weight.T (+ bias)``: the feed-forward input current of each step."""
        current = torch.matmul(x, self.weight.t())
        return current if self.bias is None else current + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, f"input of {type(self).__name__}", self.in_features)
        spikes, self.state = self.dynamics(self.synaptic_current(x), self.initial_state(x))
        return spikes

    @abstractmethod
    def dynamics(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """Simulate the neurons on input current ``[T, B, N]`` from ``state``.

        Returns the spikes ``[T, B, N]`` and the state after the last step. A recurrent
        layer adds ``a_{t-1} @ recurrent_weight.T`` to the current of step t.
        """

    def extra_repr(self) -> str:
        rec = ", recurrent" if self.recurrent else ""
        return f"{self.in_features} -> {self.out_features}{rec}, {self.neuron.describe()}, surrogate={self.surrogate.describe()}"


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


class Readout(nn.Module):
    """Linear synapses into non-spiking leaky integrators; output is the voltage ``[T, B, C]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        neuron: NeuronSpec | None = None,
        *,
        train_tau: bool = False,
    ) -> None:
        super().__init__()
        neuron = neuron if neuron is not None else LI()
        if neuron.spiking:
            raise SnnkitError(
                "Readout takes a non-spiking neuron (li); use a spiking layer instead"
            )
        self.neuron = neuron
        self.in_features, self.out_features = in_features, out_features
        self.params = NeuronParameters(neuron, out_features, train_tau=train_tau)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(in_features))
        self.state: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def reset_state(self) -> None:
        self.state = None

    def detach_state(self) -> None:
        if self.state is not None:
            v, i = self.state
            self.state = (v.detach(), None if i is None else i.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, "input of Readout", self.in_features)
        current = torch.matmul(x, self.weight.t())
        v0, i0 = self.state if self.state is not None else (None, None)
        if v0 is not None and v0.shape[0] != x.shape[1]:
            raise SnnkitError("Readout: carried state has another batch size; call reset_state()")
        p = self.params
        synaptic = p.tau_syn is not None
        if synaptic:
            current = leaky_integrate(current, p.tau_syn.to(current), p.dt, i0)
        v = leaky_integrate(current, p.tau_mem.to(current), p.dt, v0)
        self.state = (v[-1], current[-1] if synaptic else None)
        return v

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self.neuron.describe()}"


@dataclass
class NetworkOutput:
    """What a forward pass returns: the readout (``[T, B, C]``) and each hidden layer's spikes."""

    output: torch.Tensor
    hidden_spikes: list[torch.Tensor]


class Network(nn.Module):
    """A stack of spiking layers and an output layer (LI readout or spiking)."""

    def __init__(self, layers: list[nn.Module], output: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.output = output

    @property
    def output_kind(self) -> str:
        """'trace' for an LI readout, 'spikes' for a spiking output layer."""
        return "trace" if isinstance(self.output, Readout) else "spikes"

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        hidden = []
        for layer in self.layers:
            x = layer(x)
            hidden.append(x)
        return NetworkOutput(self.output(x), hidden)

    def reset_state(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_state"):
                module.reset_state()

    def detach_state(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "detach_state"):
                module.detach_state()


__all__ = [
    "LIFState",
    "Network",
    "NetworkOutput",
    "NeuronParameters",
    "Readout",
    "SpikingLayer",
    "leaky_integrate",
    "parse_shape",
]
