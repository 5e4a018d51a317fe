"""EEST networks: feed-forward spiking layers on continuous spike times, spiking or LI readout.

An :class:`snnkit.event_nets.EventNetwork`: called on :class:`snnkit.events.Events`, returns
an :class:`snnkit.event_nets.EventOutput` with every spiking layer's spike times and, for a
leaky-integrator readout, an :class:`snnkit.continuous.LIReadout` (closed form in the spike
times, differentiated by autograd: it is exact); parameters are named ``layers.<k>.weight``
and ``output.weight``.
"""

from __future__ import annotations

import torch

from snnkit.event_nets import EventLayer, EventNetwork
from snnkit_eest.forward import LayerConfig
from snnkit_eest.function import BACKENDS, spike_times

__all__ = ["EESTNetwork"]


class EESTNetwork(EventNetwork):
    """Spiking layers trained by EEST, then a spiking output layer or an LI readout."""

    method = "eest"
    backends = BACKENDS

    def layer_spike_times(
        self, pre: torch.Tensor, layer: EventLayer, config: LayerConfig
    ) -> torch.Tensor:
        return spike_times(pre, layer.weight, config, **self.options)
