"""snntorch's ``Leaky`` (``Synaptic`` with tau_syn) stepped in a Python loop over
``current.unbind(0)``, as snntorch's tutorials step it (they index ``x[step]``; ``unbind``
gives the same result with an O(T) backward instead of O(T^2)).

snnkit convention: ``beta`` = exp(-dt/tau_mem) (``alpha`` = exp(-dt/tau_syn) for
``Synaptic``), ``reset_delay=False`` (the reset at the spike's step, as snnkit's; the
default ``True`` subtracts it one step later, undecayed), snnkit's surrogate through
``snntorch.surrogate.custom_surrogate``. The reset gradient flows through the spike
(``reset_delay=False`` subtracts the spike itself), so the oracle is ``bptt``.
"""

from __future__ import annotations

import torch

from snnkit.neurons import LIFState
from snnkit_peers.base import PeerMethod, PeerNeuron, as_float64, import_library


class SnntorchNeuron(PeerNeuron):
    library = "snntorch"

    def build(self, like):
        snn = import_library("snntorch", "snntorch")
        synaptic = self.beta is not None
        # float64 tensors: snntorch stores Python floats as float32 buffers, which would
        # round the decays before .to(dtype) (a float64 population would not be float64)
        kwargs = {"threshold": as_float64(self.theta)}
        if self.convention == "snnkit":
            surrogate, theta = self.surrogate, self.theta
            kwargs.update(
                reset_mechanism=self.neuron.reset,
                reset_delay=False,
                spike_grad=snn.surrogate.custom_surrogate(
                    lambda x, grad, _spikes: grad * surrogate(x + theta, theta)
                ),
            )
        if synaptic:
            module = snn.Synaptic(
                alpha=as_float64(self.beta), beta=as_float64(self.alpha), **kwargs
            )
        else:
            module = snn.Leaky(beta=as_float64(self.alpha), **kwargs)
        return module.to(device=like.device, dtype=like.dtype)

    def simulate(self, current, state):
        lif = self.peer(current)
        mem, syn = state.v, state.i
        spikes = []
        for x in current.unbind(0):
            if syn is None:
                spk, mem = lif(x, mem)
            else:
                spk, syn, mem = lif(x, syn, mem)
            spikes.append(spk)
        spikes = torch.stack(spikes)
        return spikes, LIFState(mem, syn, spikes[-1].to(current.dtype))


class Snntorch(PeerMethod):
    name = "snntorch"
    summary = "snntorch's Leaky/Synaptic LIF (autograd BPTT), configured to snnkit's LIF"
    paper = "Eshraghian et al., Training spiking neural networks using lessons from deep learning, Proc. IEEE 111(9), 2023"
    oracle = "bptt"
    neuron_class = SnntorchNeuron
