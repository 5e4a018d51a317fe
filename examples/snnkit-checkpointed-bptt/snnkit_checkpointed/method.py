"""Segment-checkpointed BPTT.

The forward pass runs the neurons in segments of ``segment`` steps and keeps only what
each segment starts from; the backward pass recomputes one segment at a time. Gradients
are exactly BPTT's (the recomputation repeats the same operations). A neuron module
(:class:`CheckpointedNeuron`, any shape, behind any synapse) keeps its ``[T, B, N]`` input
current and the ``T/S`` boundary states; a dense layer (:class:`CheckpointedLayer`)
recomputes its synaptic current too, so it keeps only its input spikes: the memory held
for the backward pass falls from several ``[B, N]`` tensors per step to the ``[T, B, in]``
input plus the boundary states and one segment's graph. Works for every neuron with a
reference step, as BPTT does.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from snnkit import GradientMethod, SnnkitError
from snnkit.events import check_raster
from snnkit.nn import SpikingLayer
from snnkit.reference.bptt import BPTT, BPTTNeuron


def _segments(segment: object) -> int:
    if not isinstance(segment, int) or isinstance(segment, bool) or segment < 1:
        raise SnnkitError(f"segment must be an integer >= 1, got {segment!r}")
    return segment


def checkpointed(step, x: torch.Tensor, state, segment: int):
    """Run ``step(chunk, state) -> (out, state)`` over ``x`` in segments of ``segment``
    steps, keeping the graph only at segment boundaries; the state is a NamedTuple."""
    kind, outputs = type(state), []

    def run(chunk, *fields):
        out, new = step(chunk, kind(*fields))
        return out, *new

    for chunk in x.split(segment):
        out, *fields = checkpoint(run, chunk, *state, use_reentrant=False)
        state = kind(*fields)
        outputs.append(out)
    return torch.cat(outputs), state


class CheckpointedNeuron(BPTTNeuron):
    """BPTT's neurons (their ``dynamics``), with the graph kept only at segment boundaries."""

    def __init__(self, *args, segment: int = 16, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.segment = _segments(segment)

    def dynamics(self, current: torch.Tensor, state):
        return checkpointed(super().dynamics, current, state, self.segment)


class CheckpointedLayer(SpikingLayer):
    """Dense synapses + BPTT neurons, both recomputed per segment in the backward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, "input of CheckpointedLayer", self.in_features)
        neurons = self.neurons
        state = neurons.initial_state(x.new_empty(x.shape[0], x.shape[1], self.out_features))

        def step(chunk, state):
            return BPTTNeuron.dynamics(neurons, self.synapse(chunk), state)

        spikes, neurons.state = checkpointed(step, x, state, neurons.segment)
        return spikes


class CheckpointedBPTT(GradientMethod):
    """Surrogate-gradient BPTT that stores the graph only at segment boundaries."""

    name = "checkpointed-bptt"
    summary = "BPTT with segment checkpointing: exact BPTT gradients, less memory"
    paper = "Chen et al., Training deep nets with sublinear memory cost, arXiv 1604.06174"
    version = "2"
    representation = "raster"
    oracle = "bptt"
    exact = True
    neurons = BPTT.neurons

    def supports(self, neuron):
        return BPTT().supports(neuron)

    def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
        self.check(spec)
        return CheckpointedNeuron(spec, shape, surrogate=surrogate, recurrent=recurrent, **options)

    def layer(self, neuron, in_features, out_features, **options):
        self.check(neuron)
        return CheckpointedLayer.of(self, neuron, in_features, out_features, **options)
