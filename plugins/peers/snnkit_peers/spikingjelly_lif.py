"""spikingjelly's ``LIFNode`` in multi-step mode (``step_mode="m"``: the whole
``[T, B, N]`` sequence in one call), as spikingjelly's documentation recommends.

snnkit convention: ``decay_input=False`` and ``tau`` = 1 / (1 - alpha), so that
H = (1 - 1/tau) V + X = alpha V + X; ``v_reset=None`` (subtract the threshold) or 0
(reset to zero), ``detach_reset=False`` (the reset gradient flows through the spike: the
oracle is ``bptt``), snnkit's surrogate as the ``surrogate_function`` module. LIFNode has
no synaptic current: with tau_syn the adapter filters the current (i_t = beta i_{t-1} +
x_t, in torch) before the node. A custom surrogate takes spikingjelly's torch reference
path; its fused kernels serve its built-in surrogates only.
"""

from __future__ import annotations

import torch

from snnkit.neurons import LIFState
from snnkit_peers.base import (
    HeavisideSurrogate,
    PeerMethod,
    PeerNeuron,
    import_library,
    synaptic_current,
)


class _Surrogate(torch.nn.Module):
    """snnkit's surrogate as a spikingjelly ``surrogate_function`` (called on V - theta)."""

    def __init__(self, surrogate, theta: float) -> None:
        super().__init__()
        self.surrogate, self.theta = surrogate, theta

    def forward(self, x):
        return HeavisideSurrogate.apply(x, self.theta, self.surrogate)


class SpikingjellyNeuron(PeerNeuron):
    library = "spikingjelly"

    def build(self, like):
        neuron = import_library("spikingjelly.activation_based.neuron", "spikingjelly")
        kwargs = {"tau": 1.0 / (1.0 - self.alpha), "v_threshold": self.theta, "step_mode": "m"}
        if self.convention == "snnkit":
            kwargs.update(
                decay_input=False,
                v_reset=None if self.neuron.reset == "subtract" else 0.0,
                detach_reset=False,
                surrogate_function=_Surrogate(self.surrogate, self.theta),
            )
        return neuron.LIFNode(**kwargs).to(device=like.device, dtype=like.dtype)

    def simulate(self, current, state):
        node = self.peer(current)
        i = None
        if self.beta is not None:
            current = synaptic_current(current, state.i, self.beta)
            i = current[-1]
        node.reset()
        node.v = state.v
        spikes = node(current)
        return spikes, LIFState(node.v, i, spikes[-1].to(current.dtype))


class Spikingjelly(PeerMethod):
    name = "spikingjelly"
    summary = "spikingjelly's LIFNode (multi-step, autograd BPTT), configured to snnkit's LIF"
    paper = "Fang et al., SpikingJelly, Science Advances 9(40), 2023"
    oracle = "bptt"
    neuron_class = SpikingjellyNeuron
