"""What every event method (representation ``"events"``) builds on: the network contract
and the parts the methods share.

An event network is called on :class:`snnkit.events.Events` and returns an
:class:`EventOutput`; its parameters are named ``layers.<k>.weight``,
``layers.<k>.recurrent_weight`` and ``output.weight``. :class:`EventMethod` is the
method's base (``supports``, ``layer``), :class:`EventLayer` holds one layer's weights,
:func:`event_layers` draws a network's layers, :func:`readout_kernel` gives the LI
readout's dynamics, and :class:`EventNetwork` runs a method's spiking layers in order and
adds the LI readout: a method subclasses it and implements
:meth:`EventNetwork.layer_spike_times`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from snnkit.continuous import LIFKernel, LIReadout, li_readout
from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.kernels import check_backend
from snnkit.methods import GradientMethod
from snnkit.neurons import LI, LIF, NeuronSpec
from snnkit.nn import parse_shape
from snnkit.weight_init import event_weights

__all__ = [
    "EventLayer",
    "EventMethod",
    "EventNetwork",
    "EventOutput",
    "event_layers",
    "event_neuron_problem",
    "readout_kernel",
]


@dataclass
class EventOutput:
    """What an event network returns.

    ``spikes``: spike times ``[B, N, K]`` per spiking layer (``inf`` = none; the last
    entry is the output layer when the readout spikes). ``readout``: for an LI readout,
    an object with ``integral()``, ``integral_exp()``, ``maximum()`` and ``mean()``, each
    ``[B, C]`` (e.g. :class:`snnkit.continuous.LIReadout`); None otherwise. ``duration``:
    the input window (ms).
    """

    spikes: list[torch.Tensor]
    readout: Any | None = None
    duration: float | None = None

    def events(self, layer: int = -1) -> Events:
        """A layer's spike times (default: the last) with the window, as the spike-time
        losses take them (a silent neuron counts as firing at ``duration``)."""
        if self.duration is None:
            raise SnnkitError("this EventOutput has no duration; build it with duration=")
        return Events(self.spikes[layer], self.duration)


def event_neuron_problem(neuron: NeuronSpec) -> str | None:
    """Why ``neuron`` is not a continuous-time current-based LIF (the model of every event
    method), else None: the shared part of their ``supports()``."""
    if not isinstance(neuron, LIF) or math.isinf(neuron.tau_mem):
        return "needs a leaky LIF neuron (continuous-time current-based LIF)"
    if neuron.tau_syn is None:
        return "needs a synaptic current (set tau_syn): input spikes jump the current"
    if neuron.multi_spike or neuron.subtract is not None:
        return "multi_spike and subtract= are raster options; in continuous time each crossing is one spike"
    return None


class EventLayer(nn.Module):
    """Weights of one event layer: ``weight [out, in]`` and, if recurrent,
    ``recurrent_weight [out, out]`` (the dynamics live in the network)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        recurrent: bool = False,
        weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        if weight is None:
            weight = torch.randn(out_features, in_features) / math.sqrt(in_features)
        self.weight = nn.Parameter(weight)
        self.recurrent_weight = (
            nn.Parameter(0.1 * torch.randn(out_features, out_features) / math.sqrt(out_features))
            if recurrent
            else None
        )


class EventMethod(GradientMethod):
    """A gradient method on continuous spike times (representation ``"events"``), checked
    against the exact-events oracle; its neuron is the continuous-time current-based LIF."""

    representation = "events"
    oracle = "exact-events"
    neurons = ("lif",)

    def supports(self, neuron: NeuronSpec) -> str | None:
        return event_neuron_problem(neuron)

    def layer(
        self,
        neuron,
        in_features,
        out_features,
        *,
        recurrent=False,
        surrogate=None,
        weight_mean: float = 0.5,
        weight_std: float = 0.5,
    ) -> EventLayer:
        """Weights of one layer, drawn by :func:`snnkit.weight_init.event_weights`."""
        self.check(neuron)
        weight = event_weights(out_features, in_features, neuron, weight_mean, weight_std)
        return EventLayer(in_features, out_features, recurrent, weight)


def event_layers(
    shape: str,
    neuron: LIF,
    readout: NeuronSpec | None,
    *,
    recurrent: bool = False,
    weight_mean: float = 0.5,
    weight_std: float = 0.5,
    output_weight_mean: float | None = None,
    output_weight_std: float | None = None,
) -> tuple[list[EventLayer], EventLayer, NeuronSpec]:
    """``(hidden layers, output layer, readout)`` for ``shape`` ("5-200-3").

    Weights are drawn by :func:`snnkit.weight_init.event_weights` (the ``output_`` mean and std
    for the output layer, defaulting to the hidden ones), in order; ``readout`` defaults
    to an LI with the neuron's time constants.
    """
    sizes = parse_shape(shape)
    if readout is None:
        readout = LI(tau_mem=neuron.tau_mem, tau_syn=neuron.tau_syn)

    hidden = [
        EventLayer(a, b, recurrent, event_weights(b, a, neuron, weight_mean, weight_std))
        for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
    ]
    mean = weight_mean if output_weight_mean is None else output_weight_mean
    std = weight_std if output_weight_std is None else output_weight_std
    out_neuron = readout if readout.spiking else neuron
    n_in, n_out = sizes[-2], sizes[-1]
    output = EventLayer(n_in, n_out, weight=event_weights(n_out, n_in, out_neuron, mean, std))
    return hidden, output, readout


def readout_kernel(readout: NeuronSpec, neuron: LIF) -> LIFKernel | None:
    """The dynamics of an LI readout (its ``tau_syn`` defaulting to the neuron's), None
    when the readout spikes."""
    if readout.spiking:
        return None
    return LIFKernel(readout.tau_mem, readout.tau_syn or neuron.tau_syn)


class EventNetwork(nn.Module):
    """Spiking event layers run in order, then a spiking output layer or an LI readout.

    ``configs``: one per spiking layer (the output too when it spikes), each a dataclass
    with a ``duration`` field that is set to the input's at each call. ``backend``: where
    the layers run, one of ``"auto"`` and :attr:`backends` (see
    :func:`snnkit.kernels.select`), passed on in :attr:`options`. A subclass sets
    :attr:`method` (its name, for messages) and implements :meth:`layer_spike_times`.
    """

    method = "event"
    backends: tuple[str, ...] = ("torch",)

    def __init__(
        self,
        layers: list[EventLayer],
        output: EventLayer,
        configs: list[Any],
        readout_kernel: LIFKernel | None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_backend(backend, self.backends, self.method)
        self.options: dict[str, Any] = {"backend": backend}  # keywords of the layer function
        self.layers = nn.ModuleList(layers)
        self.output = output
        self.configs = configs
        self.readout_kernel = readout_kernel

    @property
    def output_kind(self) -> str:
        return "trace" if self.readout_kernel is not None else "spikes"

    def reset_state(self) -> None:
        """Each call simulates from rest; nothing is carried."""

    def spiking_layers(self) -> list[EventLayer]:
        """The layers that spike: the hidden ones, and the output one unless it is an LI readout."""
        return [*self.layers, self.output] if self.readout_kernel is None else list(self.layers)

    def layer_spike_times(self, pre: torch.Tensor, layer: EventLayer, config: Any) -> torch.Tensor:
        """Spike times ``[B, N, K]`` of ``layer`` fed by ``pre [B, N_in, K_in]`` (differentiable)."""
        raise NotImplementedError

    def forward(self, inputs: Events) -> EventOutput:
        if not isinstance(inputs, Events):
            raise SnnkitError(
                f"an {self.method} network takes snnkit.events.Events, got "
                f"{type(inputs).__name__}; build one with Events(times, duration) or from a "
                "dataset's .events"
            )
        times = inputs.times
        n_in = (list(self.layers) or [self.output])[0].in_features
        if times.ndim != 3 or times.shape[1] != n_in:
            raise SnnkitError(
                f"input spike times must be [B, {n_in}, K] (the network has {n_in} inputs), "
                f"got {tuple(times.shape)}; check the dataset and the shape string"
            )
        if times.numel() and math.isnan(float(times.detach().amin())):  # NaN propagates
            raise SnnkitError("input spike times contain NaN; use inf for 'no spike'")
        pre = times.to(self.output.weight.dtype)
        spikes = []
        for layer, base in zip(self.spiking_layers(), self.configs, strict=True):
            config = replace(base, duration=inputs.duration)
            pre = self.layer_spike_times(pre, layer, config)
            spikes.append(pre)
        readout: LIReadout | None = None
        if self.readout_kernel is not None:
            readout = li_readout(pre, self.output.weight, self.readout_kernel, inputs.duration)
        return EventOutput(spikes, readout, inputs.duration)
