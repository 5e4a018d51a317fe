"""``--grad exact-autograd``: autograd through the event-exact simulator.

The reference method for continuous-time (event) networks: the forward pass is
:func:`snnkit.reference.exact.simulate`, whose spike times are differentiable (one Newton
step from each detached root), so autograd yields the exact gradient for the current
spike pattern. It is slow (Python loops over events) and meant as the ground truth that
EventProp, EEST and other event methods are compared with, and for small experiments.

It is the reference implementation of the event-network contract of
:mod:`snnkit.event_nets` (``network(events) -> EventOutput``); of that module it uses the
weight holders and the output type only, never the continuous-time maths that the methods
it checks run (:mod:`snnkit.continuous`): its simulator and readout are its own.
"""

from __future__ import annotations

from torch import nn

from snnkit.errors import SnnkitError
from snnkit.event_nets import EventLayer, EventMethod, EventOutput, event_layers
from snnkit.events import Events
from snnkit.neurons import LIF, NeuronSpec
from snnkit.reference.exact import ExactLayer, ExactNeuron, ExactResult, simulate


def exact_neuron(neuron: NeuronSpec) -> ExactNeuron:
    """The continuous-time counterpart of a LIF spec (reset to 0 or by the threshold)."""
    return ExactNeuron(
        tau_mem=neuron.tau_mem,
        tau_syn=neuron.tau_syn,
        threshold=neuron.threshold,
        reset=neuron.reset,
    )


def _exact(layer: EventLayer) -> ExactLayer:
    return ExactLayer(layer.weight, layer.recurrent_weight)


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
        spiking = [_exact(layer) for layer in self.layers]
        li, taus = None, None
        if self.readout_neuron.spiking:
            spiking.append(_exact(self.output))
        else:
            li = _exact(self.output)
            taus = (self.readout_neuron.tau_mem, self.readout_neuron.tau_syn or self.neuron.tau_syn)
        return simulate(spiking, exact_neuron(self.neuron), inputs, readout=li, readout_neuron=taus)

    def forward(self, inputs: Events) -> EventOutput:
        result = self.simulate(inputs)
        return EventOutput([e.times for e in result.spikes], result.readout, inputs.duration)

    def reset_state(self) -> None:
        """Event networks simulate each call from rest; nothing is carried."""


class ExactAutograd(EventMethod):
    """Autograd through the event-exact simulation: exact, slow, the event reference."""

    name = "exact-autograd"
    summary = "Autograd through the event-exact float64 simulation (reference for event methods)"
    paper = "Wunderlich & Pehle 2021 (model); gradients by implicit differentiation of spike times"
    version = "1"
    exact = True

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
        """Layers for ``shape``; ``weight_mean``/``weight_std`` (:func:`snnkit.weight_init.event_weights`)
        for every layer, the ``output_`` ones for the last layer (default: the same)."""
        self.check(neuron)
        if readout is not None and readout.spiking and readout != neuron:
            raise SnnkitError("a spiking readout must use the hidden neuron's parameters here")
        layers, output, readout = event_layers(
            shape,
            neuron,
            readout,
            recurrent=recurrent,
            output_weight_mean=output_weight_mean,
            output_weight_std=output_weight_std,
            **options,
        )
        return ExactEventNetwork(layers, output, neuron, readout)
