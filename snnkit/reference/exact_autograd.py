"""``--grad exact-autograd``: autograd through the event-exact simulator.

The reference method for continuous-time (event) networks: the forward pass is
:func:`snnkit.reference.exact.simulate`, whose spike times are differentiable (one Newton
step from each detached root), so autograd yields the exact gradient for the current
spike pattern. It is slow (Python loops over events) and meant as the ground truth that
EventProp, EEST and other event methods are compared with, and for small experiments.

It also fixes the interface of an event network that the conformance suite relies on:
``network(events) -> EventOutput`` with per-layer spike times, parameters named
``layers.<k>.weight`` / ``layers.<k>.recurrent_weight`` and ``output.weight``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.init import event_weights
from snnkit.methods import GradientMethod
from snnkit.neurons import LI, LIF, NeuronSpec
from snnkit.nn import parse_shape
from snnkit.reference.exact import ExactLayer, ExactNeuron, ExactResult, simulate


@dataclass
class EventOutput:
    """What an event network returns.

    ``spikes``: spike times ``[B, N, K]`` per spiking layer (``inf`` = none; the last
    entry is the output layer when the readout spikes). ``readout``: for an LI readout,
    an object with ``integral()``, ``integral_exp()``, ``maximum()`` and ``mean()``, each
    ``[B, C]`` (see :class:`snnkit.reference.exact.LIReadout`); None otherwise.
    """

    spikes: list[torch.Tensor]
    readout: Any | None = None


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


def exact_neuron(neuron: NeuronSpec) -> ExactNeuron:
    """The continuous-time counterpart of a LIF spec (reset to 0 or by the threshold)."""
    return ExactNeuron(
        tau_mem=neuron.tau_mem,
        tau_syn=neuron.tau_syn,
        threshold=neuron.threshold,
        reset=neuron.reset,
    )


class EventLayer(nn.Module):
    """Weights of one event layer (the dynamics live in the network's simulator)."""

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

    def exact(self) -> ExactLayer:
        return ExactLayer(self.weight, self.recurrent_weight)


class ExactEventNetwork(nn.Module):
    """Spiking layers (and an LI or spiking readout) simulated exactly in continuous time."""

    def __init__(
        self, layers: list[EventLayer], output: EventLayer, neuron: LIF, readout: NeuronSpec
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.output = output
        self.neuron, self.readout_neuron = neuron, readout

    @property
    def output_kind(self) -> str:
        return "spikes" if self.readout_neuron.spiking else "trace"

    def simulate(self, inputs: Events) -> ExactResult:
        """The full exact simulation (spike times, currents at spikes, traces, readout)."""
        spiking = [layer.exact() for layer in self.layers]
        li, taus = None, None
        if self.readout_neuron.spiking:
            spiking.append(self.output.exact())
        else:
            li = self.output.exact()
            taus = (self.readout_neuron.tau_mem, self.readout_neuron.tau_syn or self.neuron.tau_syn)
        return simulate(spiking, exact_neuron(self.neuron), inputs, readout=li, readout_neuron=taus)

    def forward(self, inputs: Events) -> EventOutput:
        result = self.simulate(inputs)
        spikes = []
        for e in result.spikes:
            times = e.times
            times.duration = inputs.duration  # read by the first-spike losses (silent = T)
            spikes.append(times)
        return EventOutput(spikes, result.readout)

    def reset_state(self) -> None:
        """Event networks simulate each call from rest; nothing is carried."""


class ExactAutograd(GradientMethod):
    """Autograd through the event-exact simulation: exact, slow, the event reference."""

    name = "exact-autograd"
    summary = "Autograd through the event-exact float64 simulation (reference for event methods)"
    paper = "Wunderlich & Pehle 2021 (model); gradients by implicit differentiation of spike times"
    version = "1"
    representation = "events"
    oracle = "exact-events"
    exact = True
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
    ):
        """An event layer; weights by :func:`snnkit.init.event_weights` (``weight_mean/std``)."""
        self.check(neuron)
        weight = event_weights(out_features, in_features, neuron, weight_mean, weight_std)
        return EventLayer(in_features, out_features, recurrent, weight)

    def network(
        self,
        shape,
        neuron,
        *,
        readout=None,
        recurrent=False,
        surrogate=None,
        output_weight_mean: float | None = None,
        output_weight_std: float | None = None,
        **options,
    ):
        """Layers for ``shape``; ``weight_mean``/``weight_std`` (:func:`snnkit.init.event_weights`)
        for every layer, the ``output_`` ones for the last layer (default: the same)."""
        self.check(neuron)
        sizes = parse_shape(shape)
        readout = (
            readout if readout is not None else LI(tau_mem=neuron.tau_mem, tau_syn=neuron.tau_syn)
        )
        if readout.spiking and readout != neuron:
            raise SnnkitError("a spiking readout must use the hidden neuron's parameters here")
        layers = [
            self.layer(neuron, a, b, recurrent=recurrent, **options)
            for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
        ]
        out_options = dict(options)
        if output_weight_mean is not None:
            out_options["weight_mean"] = output_weight_mean
        if output_weight_std is not None:
            out_options["weight_std"] = output_weight_std
        return ExactEventNetwork(
            layers, self.layer(neuron, sizes[-2], sizes[-1], **out_options), neuron, readout
        )
