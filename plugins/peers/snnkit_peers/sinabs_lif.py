"""sinabs's ``sinabs.layers.LIF`` called once on the whole (batch-first) sequence, as
sinabs's documentation uses it; sinabs loops over time itself (indexing ``input[:, t]``).

snnkit convention: ``tau_mem``/``tau_syn`` in steps, ``norm_input=False`` (the default
scales the input by 1 - alpha), ``SingleSpike`` (``MultiSpike``/``MaxSpike`` for
multi-spike neurons; sinabs's default is ``MultiSpike``), ``MembraneSubtract`` with the
reset amount, snnkit's surrogate as ``surrogate_grad_fn`` (the same signature, (v, theta)).
sinabs's synaptic stage is i_t = beta (i_{t-1} + x_t): the input is divided by beta to
give snnkit's i_t = beta i_{t-1} + x_t. The spike carries its gradient into the
subtractive reset, so the oracle is ``bptt``; sinabs's reset to zero multiplies by a mask
of the spikes (no gradient through the reset), a different oracle, so it is not offered.
"""

from __future__ import annotations

from snnkit.neurons import LIFState
from snnkit_peers.base import PeerMethod, PeerNeuron, as_float64, import_library


class SinabsNeuron(PeerNeuron):
    library = "sinabs"

    def build(self, like):
        layers = import_library("sinabs.layers", "sinabs")
        spec = self.neuron
        # float64 tensors: sinabs keeps Python floats as float32 tensors (rounded decays)
        tau_syn = None if spec.tau_syn is None else as_float64(spec.tau_syn / spec.dt)
        kwargs = {"tau_mem": as_float64(spec.tau_mem / spec.dt), "tau_syn": tau_syn}
        if self.convention == "snnkit":
            activation = import_library("sinabs.activation", "sinabs")
            if not spec.multi_spike:
                spike_fn = activation.SingleSpike
            elif spec.max_spikes is None:
                spike_fn = activation.MultiSpike
            else:
                spike_fn = activation.MaxSpike(spec.max_spikes)
            kwargs.update(
                spike_fn=spike_fn,
                reset_fn=activation.MembraneSubtract(subtract_value=spec.subtract),
                surrogate_grad_fn=self.surrogate,
                norm_input=False,
            )
        module = layers.LIF(spike_threshold=as_float64(self.theta), **kwargs)
        return module.to(device=like.device, dtype=like.dtype)

    def simulate(self, current, state):
        lif = self.peer(current)
        steps, batch, n = current.shape
        lif.init_state_with_shape((batch, n))
        lif.v_mem = state.v
        x = current
        if self.beta is not None:
            lif.i_syn = state.i
            if self.convention == "snnkit":
                x = current / self.beta
        spikes = lif(x.transpose(0, 1)).transpose(0, 1)
        i = lif.i_syn if self.beta is not None else None
        return spikes, LIFState(lif.v_mem, i, spikes[-1].to(current.dtype))


class Sinabs(PeerMethod):
    name = "sinabs"
    summary = "sinabs's layers.LIF (autograd BPTT), configured to snnkit's LIF"
    paper = "Sheik et al., sinabs (SynSense), https://sinabs.readthedocs.io"
    oracle = "bptt"
    neuron_class = SinabsNeuron
    resets = ("subtract",)
    multi_spike = True
    custom_subtract = True
