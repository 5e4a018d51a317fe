"""norse's ``LIFBoxCell`` (a current-based LIF without synaptic stage; norse 1.1 has no
sequence module for it) stepped in a Python loop over ``current.unbind(0)``, as norse's
documentation steps its cells.

snnkit convention: norse integrates v <- v + dt tau_mem_inv (v_leak - v + x); with
dt tau_mem_inv = 1 - alpha the decay is snnkit's alpha and the adapter divides the input
by 1 - alpha (so v_t = alpha v_{t-1} + x_t). ``reset_subtract`` or ``reset_value`` (to 0);
both let the gradient flow through the spike, so the oracle is ``bptt``. With tau_syn the
adapter filters the current first (norse's ``LIF`` has a synaptic stage, but it feeds the
membrane the previous step's current, a one-step delay snnkit's LIF does not have).

Surrogates: norse names its own (``method``). snnkit's ``FastSigmoid(slope=1)`` is norse's
``"super"`` (norse 1.1 ignores ``alpha`` in SuperSpike's backward: 1 / (|x| + 1)^2) and
``Triangle(width=1)`` its ``"triangle"`` with alpha 1; any other snnkit surrogate cannot be
expressed, and the neuron trains with ``"super"`` (stated in ``notes``).
"""

from __future__ import annotations

import torch

from snnkit.neurons import LIFState
from snnkit.surrogates import FastSigmoid, Triangle
from snnkit_peers.base import PeerMethod, PeerNeuron, import_library, synaptic_current

DT = 1e-3  # norse's default step (its time constants are in seconds)


def norse_surrogate(surrogate) -> tuple[str, float] | None:
    """norse's (method, alpha) for a snnkit surrogate, or None if norse cannot express it."""
    if isinstance(surrogate, FastSigmoid) and surrogate.slope == 1.0:
        return "super", 1.0
    if isinstance(surrogate, Triangle) and surrogate.width == 1.0:
        return "triangle", 1.0
    return None


class NorseNeuron(PeerNeuron):
    library = "norse"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.convention == "snnkit" and norse_surrogate(self.surrogate) is None:
            self.notes.append(
                f"norse cannot express surrogate {self.surrogate.describe()}: it trains with "
                "its SuperSpike, 1/(|v - theta| + 1)^2"
            )

    def build(self, like):
        norse = import_library("norse.torch", "norse")
        reset = import_library("norse.torch.functional.reset", "norse")

        def tensor(x):
            return torch.as_tensor(x, dtype=like.dtype, device=like.device)

        kwargs = {"tau_mem_inv": tensor((1.0 - self.alpha) / DT), "v_th": tensor(self.theta)}
        if self.convention == "snnkit":
            method, alpha = norse_surrogate(self.surrogate) or ("super", 100.0)
            kwargs.update(
                method=method,
                alpha=tensor(alpha),
                v_reset=tensor(0.0),
                reset_method=reset.reset_subtract
                if self.neuron.reset == "subtract"
                else reset.reset_value,
            )
        return norse.LIFBoxCell(p=norse.LIFBoxParameters(**kwargs), dt=DT)

    def simulate(self, current, state):
        norse = import_library("norse.torch", "norse")
        cell = self.peer(current)
        i = None
        if self.beta is not None:
            current = synaptic_current(current, state.i, self.beta)
            i = current[-1]
        if self.convention == "snnkit":
            current = current / (1.0 - self.alpha)
        out, spikes = norse.LIFBoxFeedForwardState(v=state.v), []
        for x in current.unbind(0):
            z, out = cell(x, out)
            spikes.append(z)
        spikes = torch.stack(spikes)
        return spikes, LIFState(out.v, i, spikes[-1].to(current.dtype))


class Norse(PeerMethod):
    name = "norse"
    summary = "norse's LIFBox (autograd BPTT), configured to snnkit's LIF"
    paper = "Pehle & Pedersen, Norse, Zenodo 2021 (doi:10.5281/zenodo.4422025)"
    oracle = "bptt"
    neuron_class = NorseNeuron
