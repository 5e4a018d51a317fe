"""EventProp networks: spiking layers on continuous spike times, LI or spiking readout.

An :class:`snnkit.event_nets.EventNetwork`: called on :class:`snnkit.events.Events`, returns
an :class:`snnkit.event_nets.EventOutput` with every spiking layer's spike times and, for a
leaky-integrator readout, an :class:`snnkit.continuous.LIReadout`; parameters are named
``layers.<k>.weight``, ``layers.<k>.recurrent_weight`` and ``output.weight``.
"""

from __future__ import annotations

import torch

from snnkit.continuous import LIFKernel
from snnkit.errors import SnnkitError
from snnkit.event_nets import EventLayer, EventNetwork
from snnkit_eventprop.function import BACKENDS, spike_times
from snnkit_eventprop.simulate import LayerConfig

__all__ = ["EventPropNetwork"]

MODES = ("exact", "grid")


class EventPropNetwork(EventNetwork):
    """Spiking layers trained by EventProp and an LI (default) or spiking readout."""

    method = "eventprop"
    backends = BACKENDS

    def __init__(
        self,
        layers: list[EventLayer],
        output: EventLayer,
        configs: list[LayerConfig],
        readout_kernel: LIFKernel | None,
        *,
        mode: str = "exact",
        dt: float | None = None,
        heuristics: dict | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(layers, output, configs, readout_kernel, backend)
        if mode not in MODES:
            raise SnnkitError(f"eventprop mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "grid" and not (isinstance(dt, (int, float)) and dt > 0):
            raise SnnkitError(
                f"eventprop mode='grid' needs a positive step dt= in ms, got {dt!r}; e.g. dt=0.1"
            )
        self.mode, self.dt = mode, dt
        self.heuristics = dict(heuristics or {})

    def layer_spike_times(
        self, pre: torch.Tensor, layer: EventLayer, config: LayerConfig
    ) -> torch.Tensor:
        if self.mode == "grid":
            from snnkit_eventprop.grid import grid_spike_times

            return grid_spike_times(
                pre, layer.weight, layer.recurrent_weight, config, self.dt, **self.options
            )
        return spike_times(pre, layer.weight, layer.recurrent_weight, config, **self.options)
