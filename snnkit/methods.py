"""The GradientMethod protocol: what a method is, what it supports, and its oracle.

A gradient method turns a neuron spec into trainable torch modules. It declares enough
about itself that the core can check it (``oracle``, ``exact``) and compare it fairly
(``representation``, ``devices``). Third-party methods subclass :class:`GradientMethod`
and register an instance through ``snnkit_register_gradients``.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from snnkit.errors import SnnkitError
from snnkit.neurons import LI, NeuronSpec, own_kind

if TYPE_CHECKING:
    from torch import nn

    from snnkit.nn import Network
    from snnkit.surrogates import Surrogate

Representation = Literal["raster", "events"]
Oracle = Literal["bptt", "bptt-detached-reset", "exact-events"]
ORACLES: tuple[str, ...] = ("bptt", "bptt-detached-reset", "exact-events")


class GradientMethod(ABC):
    """A way to compute gradients through spiking neurons.

    Class attributes describe the method. A raster method provides :meth:`neuron`, a
    population of spiking neurons mapping input current ``[T, B, *features]`` to spikes of
    the same shape (a :class:`snnkit.nn.SpikingNeuron`); the core builds :meth:`layer`
    (Dense synapses + neurons) and :meth:`network` from it, and a method overrides them
    only to fuse work (EXODUS's ``save=input`` layer) or when it does not fit the raster
    stack (event methods override :meth:`network`).

    ``neurons`` lists the neuron kinds the method implements. Support is decided by kind,
    never by ``isinstance``: a subclass of LIF is not LIF unless the method says so.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    representation: ClassVar[Representation] = "raster"
    oracle: ClassVar[Oracle] = "bptt"
    exact: ClassVar[bool] = True
    approximation: ClassVar[str] = ""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    neurons: ClassVar[tuple[str, ...]] = ("lif", "if")
    # settings `snnkit run` uses for this method unless the user gives them (RunConfig
    # field names, e.g. {"surrogate": "..."}); they override the dataset's recipe
    run_defaults: ClassVar[Mapping[str, Any]] = {}

    def supports(self, neuron: NeuronSpec) -> str | None:
        """None if ``neuron`` is supported, else the reason it is not (shown to users).

        The default accepts exactly the kinds in ``neurons``; override it to add
        conditions (and call this first)."""
        kind = own_kind(neuron)
        if kind is None:
            return (
                f"{type(neuron).__name__} does not declare its own kind (a subclass of "
                f"'{neuron.kind}' may change its dynamics); give it a kind and register it"
            )
        if kind not in self.neurons:
            return f"{self.name} implements {', '.join(self.neurons)} neurons, not '{kind}'"
        return None

    def check(self, neuron: NeuronSpec) -> None:
        """Raise :class:`SnnkitError` if this method cannot simulate ``neuron``."""
        reason = self.supports(neuron)
        if reason is not None:
            raise SnnkitError(
                f"--grad {self.name} does not support --neuron {neuron.kind}: {reason}"
            )

    def neuron(
        self,
        spec: NeuronSpec,
        shape: int | tuple[int, ...] | None = None,
        *,
        surrogate: Surrogate | None = None,
        recurrent: bool = False,
        **options,
    ) -> nn.Module:
        """A population of ``spec`` neurons of feature ``shape`` (None: from the first call):
        current ``[T, B, *shape]`` -> spikes, state carried between calls."""
        raise SnnkitError(
            f"--grad {self.name} provides no neuron module ({self.representation} method); "
            "it builds whole networks only"
        )

    def layer(
        self,
        neuron: NeuronSpec,
        in_features: int,
        out_features: int,
        *,
        recurrent: bool = False,
        surrogate: Surrogate | None = None,
        weight_gain: float = 1.0,
        bias: bool = False,
        **options,
    ) -> nn.Module:
        """A hidden layer: Dense synapses ``in_features -> out_features`` (weights ~
        N(0, (weight_gain * threshold)^2 / in_features)) feeding :meth:`neuron`."""
        from snnkit.nn import SpikingLayer

        self.check(neuron)
        return SpikingLayer.of(
            self,
            neuron,
            in_features,
            out_features,
            weight_gain=weight_gain,
            bias=bias,
            recurrent=recurrent,
            surrogate=surrogate,
            **options,
        )

    def network(
        self,
        shape: str | list[int],
        neuron: NeuronSpec,
        *,
        readout: NeuronSpec | None = None,
        recurrent: bool = False,
        surrogate: Surrogate | None = None,
        **options,
    ) -> Network:
        """A feed-forward stack of ``layer``s from a shape like ``"5-120-3"``.

        ``readout`` is an LI spec (non-spiking voltage output, the default) or a spiking
        spec (the last layer is another spiking layer and the output is its spikes).
        """
        from snnkit.nn import Network, Readout, parse_shape

        sizes = parse_shape(shape)
        self.check(neuron)
        readout = readout if readout is not None else LI(tau_mem=neuron_tau(neuron), dt=neuron.dt)
        layers = [
            self.layer(neuron, n_in, n_out, recurrent=recurrent, surrogate=surrogate, **options)
            for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True)
        ]
        if readout.spiking:
            self.check(readout)
            out = self.layer(readout, sizes[-2], sizes[-1], surrogate=surrogate, **options)
        else:
            out = Readout(sizes[-2], sizes[-1], readout)
        return Network(*layers, out)

    def describe(self) -> str:
        exact = "exact" if self.exact else f"approximate ({self.approximation})"
        return f"{self.name} [{self.representation}, oracle {self.oracle}, {exact}]"


def neuron_tau(neuron: NeuronSpec) -> float:
    """A sensible readout time constant for ``neuron`` (its own, or 10 steps for IF)."""
    tau = getattr(neuron, "tau_mem", 10.0)
    return tau if tau != float("inf") else 10.0 * neuron.dt
