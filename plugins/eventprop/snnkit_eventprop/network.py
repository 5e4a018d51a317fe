"""EventProp networks: spiking layers on continuous spike times, LI or spiking readout.

Follows the event-network contract of :mod:`snnkit.reference.exact_autograd`: called on
:class:`snnkit.events.Events`, returns an ``EventOutput`` with every spiking layer's spike
times and, for a leaky-integrator readout, an :class:`EventReadout`; parameters are named
``layers.<k>.weight``, ``layers.<k>.recurrent_weight`` and ``output.weight``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.kernels import check_backend
from snnkit.reference.exact import Kernel, LIReadout
from snnkit.reference.exact_autograd import EventOutput
from snnkit_eventprop.function import BACKENDS, spike_times
from snnkit_eventprop.simulate import LayerConfig

__all__ = ["EventPropLayer", "EventPropNetwork", "EventReadout"]

MODES = ("exact", "grid")


class EventPropLayer(nn.Module):
    """Weights of one layer: ``weight [out, in]`` and, if recurrent, ``recurrent_weight``."""

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


class EventReadout(LIReadout):
    """The LI readout (closed form, :class:`snnkit.reference.exact.LIReadout`) in its own dtype."""

    def voltage(self, t) -> torch.Tensor:
        """``V`` at the times ``t`` [M] in ``[0, duration]``, as ``[B, C, M]``."""
        t = torch.as_tensor(t, dtype=self.times.dtype, device=self.times.device).reshape(-1)
        s = t[None, None, :] - self.times[:, :, None]
        response = self.kernel.voltage(0.0, 1.0, s.clamp(min=0.0)) * (s >= 0)
        return torch.einsum("bem,bec->bcm", response, self.jumps)


def readout_from_spikes(
    times: torch.Tensor, weight: torch.Tensor, kernel: Kernel, duration: float
) -> EventReadout:
    """Leaky integrators fed by spike times ``[B, N, K]`` through ``weight [C, N]``."""
    B, N, K = times.shape
    flat = times.reshape(B, N * K)
    finite = torch.isfinite(flat)
    t = torch.where(finite, flat, torch.full_like(flat, duration))
    order = torch.argsort(t.detach(), dim=1, stable=True)
    used = int(finite.sum(1).max()) if flat.numel() else 0
    order = order[:, :used]
    src = torch.arange(N, device=times.device).repeat_interleave(K)
    jumps = weight.t()[src][None] * finite[..., None].to(weight.dtype)  # [B, N*K, C]
    jumps = jumps.gather(1, order[..., None].expand(-1, -1, weight.shape[0]))
    return EventReadout(t.gather(1, order), jumps, kernel, duration)


class EventPropNetwork(nn.Module):
    """Spiking layers trained by EventProp and an LI (default) or spiking readout."""

    def __init__(
        self,
        layers: list[EventPropLayer],
        output: EventPropLayer,
        configs: list[LayerConfig],
        readout_kernel: Kernel | None,
        *,
        mode: str = "exact",
        dt: float | None = None,
        heuristics: dict | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_backend(backend, BACKENDS, "eventprop")
        if mode not in MODES:
            raise SnnkitError(f"eventprop mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "grid" and not (isinstance(dt, (int, float)) and dt > 0):
            raise SnnkitError(
                f"eventprop mode='grid' needs a positive step dt= in ms, got {dt!r}; e.g. dt=0.1"
            )
        if mode == "grid" and backend in ("cuda", "cpu"):
            raise SnnkitError(
                f"backend={backend!r}: eventprop mode='grid' runs torch code only; "
                "use backend=auto or torch, or mode='exact'"
            )
        self.layers = nn.ModuleList(layers)
        self.output = output
        self.configs = configs  # one per spiking layer (the output too when it spikes)
        self.readout_kernel = readout_kernel
        self.mode, self.dt = mode, dt
        self.heuristics = dict(heuristics or {})
        self.options: dict = {"backend": backend}  # test hooks too: {"drop_jump": "reset"}

    @property
    def output_kind(self) -> str:
        return "trace" if self.readout_kernel is not None else "spikes"

    def reset_state(self) -> None:
        """Each call simulates from rest; nothing is carried."""

    def _spiking(self):
        mods = list(self.layers)
        if self.readout_kernel is None:
            mods.append(self.output)
        return mods

    def forward(self, inputs: Events) -> EventOutput:
        if not isinstance(inputs, Events):
            raise SnnkitError(
                f"an eventprop network takes snnkit.events.Events, got {type(inputs).__name__}; "
                "build one with Events(times, duration) or from a dataset's .events"
            )
        pre = inputs.times
        dtype = self.output.weight.dtype
        if pre.dtype != dtype:
            pre = pre.to(dtype)
        first = (list(self.layers) or [self.output])[0]
        if pre.shape[1] != first.in_features:
            raise SnnkitError(
                f"input has {pre.shape[1]} neurons but the network expects "
                f"{first.in_features}; check the dataset and the shape string"
            )
        spikes = []
        for layer, base in zip(self._spiking(), self.configs, strict=True):
            config = _with_duration(base, inputs.duration)
            pre = self._layer(pre, layer, config)
            pre.duration = inputs.duration  # read by the first-spike losses
            spikes.append(pre)
        readout = None
        if self.readout_kernel is not None:
            readout = readout_from_spikes(
                pre, self.output.weight, self.readout_kernel, inputs.duration
            )
        return EventOutput(spikes, readout)

    def _layer(self, pre, layer, config):
        if self.mode == "grid":
            from snnkit_eventprop.grid import grid_spike_times

            return grid_spike_times(pre, layer.weight, layer.recurrent_weight, config, self.dt)
        return spike_times(pre, layer.weight, layer.recurrent_weight, config, **self.options)


def _with_duration(config: LayerConfig, duration: float) -> LayerConfig:
    from dataclasses import replace

    return config if config.duration == duration else replace(config, duration=duration)
