"""EventProp's feed-forward layers as CUDA kernels (CuPy), a drop-in for the torch path.

``kernels/eventprop.cu`` runs one thread per (sample, neuron): the forward finds every
crossing window by window between the sorted arrivals, the backward runs the adjoint over
the merged arrivals and own spikes, accumulating weight and arrival-time gradients with
``atomicAdd``. Recurrent layers stay on the torch path (their events are globally ordered).
CuPy is imported only when a kernel is compiled or launched (through :mod:`snnkit.kernels`).
"""

from __future__ import annotations

import functools

import torch

from snnkit import kernels
from snnkit.errors import SnnkitError
from snnkit_eventprop.simulate import LayerConfig, LayerRecord, arrivals

__all__ = ["adjoint_layer", "available", "run_layer", "source"]

_BLOCK = 128
_OPTIONS = ("--fmad=false",)
_CAP = 8  # first spike-buffer size per neuron; grown (re-run) when a neuron fires more


def available() -> bool:
    """True when CuPy is importable and a CUDA device is present."""
    return kernels.cupy_available()


@functools.cache
def source() -> str:
    return kernels.read_source("snnkit_eventprop", "kernels/eventprop.cu")


def _grid(threads: int) -> tuple[int]:
    return (max(1, (threads + _BLOCK - 1) // _BLOCK),)


def run_layer(pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig) -> LayerRecord:
    """Feed-forward layer forward pass on the device (same record as the torch path)."""
    with torch.no_grad():
        times, sources, order = arrivals(pre)
        times, sources = times.contiguous(), sources.to(torch.int64).contiguous()
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        kernel = kernels.compile_kernel(source(), "eventprop_forward", pre.dtype, _OPTIONS)
        cap = min(_CAP, config.max_spikes)
        while True:
            spikes = pre.new_full((B, N, cap), float("inf"))
            currents = pre.new_zeros(B, N, cap)
            counts = torch.zeros(B, N, dtype=torch.int64, device=pre.device)
            kernel(
                _grid(B * N),
                (_BLOCK,),
                (
                    times,
                    sources,
                    w,
                    spikes,
                    currents,
                    counts,
                    B,
                    N,
                    n_in,
                    E,
                    cap,
                    config.max_spikes,
                    config.tau_mem,
                    config.tau_syn,
                    config.threshold,
                    int(config.reset == "zero"),
                    config.v_reset,
                    config.duration,
                ),
            )
            top = int(counts.max()) if counts.numel() else 0
            if top > config.max_spikes:
                b, n = (counts > config.max_spikes).nonzero()[0].tolist()
                raise SnnkitError(
                    f"{config.name}: neuron {n} of sample {b} fires more than "
                    f"max_spikes={config.max_spikes} times; spikes are never dropped, pass a "
                    "larger max_spikes= to the network or use weaker weights"
                )
            if top <= cap:
                break
            cap = top  # re-run with a buffer that holds every spike
        return LayerRecord(
            spikes[..., :top].contiguous(), currents[..., :top].contiguous(), times, sources, order
        )


def adjoint_layer(
    record: LayerRecord, grad: torch.Tensor, weight: torch.Tensor, config: LayerConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/d arrival times [B, E], dL/dW [N, N_in])`` on the device."""
    with torch.no_grad():
        times = record.times.contiguous()
        dtype = times.dtype
        B, N, K = times.shape
        E = record.arrival_times.shape[1]
        n_in = weight.shape[1]
        g = torch.where(torch.isfinite(times), grad.to(dtype), torch.zeros_like(times))
        d_w = torch.zeros(N, n_in, dtype=dtype, device=times.device)
        d_arr = torch.zeros(B, E, dtype=dtype, device=times.device)
        counts = record.counts.to(torch.int64).contiguous()
        kernel = kernels.compile_kernel(source(), "eventprop_backward", dtype, _OPTIONS)
        kernel(
            _grid(B * N),
            (_BLOCK,),
            (
                record.arrival_times.contiguous(),
                record.sources.to(torch.int64).contiguous(),
                weight.detach().to(dtype).contiguous(),
                times,
                record.currents.contiguous(),
                g.contiguous(),
                counts,
                d_w,
                d_arr,
                B,
                N,
                n_in,
                E,
                K,
                config.tau_mem,
                config.tau_syn,
                config.threshold,
                config.v_after,
                config.duration,
            ),
        )
        return d_arr, d_w.to(weight.dtype)
