"""EEST networks: feed-forward spiking layers on continuous spike times, spiking or LI readout.

Follows the event-network contract of :mod:`snnkit.reference.exact_autograd`: called on
:class:`snnkit.events.Events`, returns an ``EventOutput`` with every spiking layer's spike
times and, for a leaky-integrator readout, a :class:`snnkit.reference.exact.LIReadout`
(closed form in the spike times, differentiated by autograd: it is exact);
parameters are named ``layers.<k>.weight`` and ``output.weight``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.events import Events
from snnkit.kernels import check_backend
from snnkit.reference.exact import Kernel, LIReadout
from snnkit.reference.exact_autograd import EventOutput
from snnkit_eest.forward import LayerConfig
from snnkit_eest.function import BACKENDS, spike_times

__all__ = ["EESTLayer", "EESTNetwork", "li_readout"]


class EESTLayer(nn.Module):
    """Weights ``[out, in]`` of one layer."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight)


def li_readout(times: torch.Tensor, weight: torch.Tensor, kernel: Kernel, duration: float):
    """Leaky integrators fed by spike times ``[B, N, K]`` through ``weight [C, N]``."""
    B, N, K = times.shape
    flat = times.reshape(B, N * K)
    finite = torch.isfinite(flat)
    t = torch.where(finite, flat, torch.full_like(flat, duration))
    order = torch.argsort(t.detach(), dim=1, stable=True)[:, : int(finite.sum(1).max())]
    source = torch.arange(N, device=times.device).repeat_interleave(K)
    jumps = weight.t()[source][None] * finite[..., None].to(weight.dtype)  # [B, N*K, C]
    jumps = jumps.gather(1, order[..., None].expand(-1, -1, weight.shape[0]))
    return LIReadout(t.gather(1, order), jumps, kernel, duration)


class EESTNetwork(nn.Module):
    """Spiking layers trained by EEST, then a spiking output layer or an LI readout."""

    def __init__(
        self,
        layers: list[EESTLayer],
        output: EESTLayer,
        configs: list[LayerConfig],
        readout_kernel: Kernel | None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_backend(backend, BACKENDS, "eest")
        self.layers = nn.ModuleList(layers)
        self.output = output
        self.configs = configs  # one per spiking layer (the output too when it spikes)
        self.readout_kernel = readout_kernel
        self.options: dict = {"backend": backend}  # test hooks too: {"reset_coupling": False}

    @property
    def output_kind(self) -> str:
        return "trace" if self.readout_kernel is not None else "spikes"

    def reset_state(self) -> None:
        """Each call simulates from rest; nothing is carried."""

    def _spiking(self) -> list[EESTLayer]:
        return [*self.layers, self.output] if self.readout_kernel is None else list(self.layers)

    def forward(self, inputs: Events) -> EventOutput:
        pre = _checked(inputs, (list(self.layers) or [self.output])[0].in_features)
        pre = pre.to(self.output.weight.dtype)
        spikes = []
        for layer, base in zip(self._spiking(), self.configs, strict=True):
            config = replace(base, duration=float(inputs.duration))
            pre = spike_times(pre, layer.weight, config, **self.options)
            pre.duration = inputs.duration  # read by the first-spike losses
            spikes.append(pre)
        readout = None
        if self.readout_kernel is not None:
            readout = li_readout(pre, self.output.weight, self.readout_kernel, inputs.duration)
        return EventOutput(spikes, readout)


def _checked(inputs, n_in: int) -> torch.Tensor:
    if not isinstance(inputs, Events):
        raise SnnkitError(
            f"an eest network takes snnkit.events.Events, got {type(inputs).__name__}; "
            "build one with Events(times, duration) or from a dataset's .events"
        )
    times = inputs.times
    if times.ndim != 3 or times.shape[1] != n_in:
        raise SnnkitError(
            f"input spike times must be [B, {n_in}, K], got {tuple(times.shape)}; "
            "check the dataset and the shape string"
        )
    if torch.isnan(times).any():
        raise SnnkitError("input spike times contain NaN; use inf for 'no spike'")
    return times
