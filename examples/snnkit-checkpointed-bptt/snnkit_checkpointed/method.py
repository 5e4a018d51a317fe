"""Segment-checkpointed BPTT.

The forward pass runs the layer (synaptic matmul and LIF loop) in segments of
``segment`` steps and keeps only the layer's input spikes and each segment's initial
state; the backward pass recomputes one segment at a time. Gradients are exactly
BPTT's (the recomputation repeats the same operations), while the memory held for the
backward pass falls from several ``[B, N]`` tensors per step to the ``[T, B, in]`` input
plus ``T/S`` boundary states and one segment's graph.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from snnkit import LIF, GradientMethod, SnnkitError
from snnkit.events import check_raster
from snnkit.nn import LIFState
from snnkit.reference.bptt import BPTTLayer


class CheckpointedLayer(BPTTLayer):
    """BPTT's layer (its ``dynamics``), with the autograd graph kept only at segment boundaries."""

    def __init__(self, *args, segment: int = 16, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(segment, int) or segment < 1:
            raise SnnkitError(f"segment must be an integer >= 1, got {segment!r}")
        self.segment = segment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_raster(x, "input of CheckpointedLayer", self.in_features)
        state = self.initial_state(x)
        outputs = []
        for chunk in x.split(self.segment):
            spikes, v, i, a = checkpoint(
                self._segment, chunk, state.v, state.i, state.a, use_reentrant=False
            )
            state = LIFState(v, i, a)
            outputs.append(spikes)
        self.state = state
        return torch.cat(outputs)

    def _segment(self, x, v, i, a):
        spikes, state = self.dynamics(self.synaptic_current(x), LIFState(v, i, a))
        return spikes, state.v, state.i, state.a


class CheckpointedBPTT(GradientMethod):
    """Surrogate-gradient BPTT that stores the graph only at segment boundaries."""

    name = "checkpointed-bptt"
    summary = "BPTT with segment checkpointing: exact BPTT gradients, less memory"
    paper = "Chen et al., Training deep nets with sublinear memory cost, arXiv 1604.06174"
    version = "1"
    representation = "raster"
    oracle = "bptt"
    exact = True

    def supports(self, neuron):
        return None if isinstance(neuron, LIF) else "only LIF/IF hidden layers"

    def layer(
        self, neuron, in_features, out_features, *, recurrent=False, surrogate=None, **options
    ):
        self.check(neuron)
        return CheckpointedLayer(
            neuron, in_features, out_features, recurrent=recurrent, surrogate=surrogate, **options
        )
