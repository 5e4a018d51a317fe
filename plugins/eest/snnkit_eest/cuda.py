"""EEST's layers as compiled kernels, CUDA (CuPy) and CPU: a drop-in for the torch path
(same :class:`LayerRecord`, same gradients).

``kernels/eest.cu`` holds the per-(sample, neuron) forward (closed-form crossings, window
by window between the sorted arrivals) and backward (one reverse pass over the merged
arrivals and own spikes). On CUDA they run one thread each (:data:`CUDA`, weight and
arrival-time gradients by ``atomicAdd``; CuPy is imported only when a kernel is compiled or
launched, through :mod:`snnkit.kernels`). On the CPU, ``kernels/eest_host.cpp`` loops over
them with OpenMP (:data:`HOST`, built by :mod:`snnkit.host`), summing the weight gradient
over fixed sample groups so that results do not depend on the thread count.
"""

from __future__ import annotations

import functools

import torch

from snnkit import kernels
from snnkit.errors import SnnkitError
from snnkit.events import spikes_in_time_order
from snnkit.kernels import Backend, launch_grid
from snnkit_eest.forward import LayerConfig, LayerRecord

__all__ = ["CUDA", "HOST", "backward_layer", "run_layer", "source"]

_OPTIONS = ("--fmad=false",)
_CAP = 8  # first spike-buffer size per neuron; re-run with a larger one when exceeded
_GROUPS = 32  # CPU backward: sample groups, each with its own weight-gradient slice


@functools.cache
def source() -> str:
    return kernels.read_source("snnkit_eest", "kernels/eest.cu")


@functools.cache
def host_source() -> str:
    return kernels.read_source("snnkit_eest", "kernels/eest_host.cpp")


def run_layer(
    backend: Backend, pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig
) -> LayerRecord:
    """Forward pass by the kernels (the record of :func:`snnkit_eest.forward.run_layer`)."""
    with torch.no_grad():
        times, sources, order = spikes_in_time_order(pre)
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        kernel = backend.kernel(source(), "eest_forward", pre.dtype, _OPTIONS)
        cap = min(_CAP, config.max_spikes)
        while True:
            spikes = pre.new_full((B, N, cap), float("inf"))
            currents = pre.new_zeros(B, N, cap)
            counts = torch.zeros(B, N, dtype=torch.int64, device=pre.device)
            args = (times, sources, w, spikes, currents, counts, B, N, n_in, E, cap)
            kernel(
                launch_grid(B * N),
                (kernels.BLOCK,),
                (
                    *args,
                    config.max_spikes,
                    config.spike_limit,
                    config.tau,
                    config.threshold,
                    config.duration,
                ),
            )
            top = int(counts.max()) if counts.numel() else 0
            if top > config.max_spikes:
                b, n = (counts > config.max_spikes).nonzero()[0].tolist()
                raise SnnkitError(
                    f"{config.name}: neuron {n} of sample {b} fires more than "
                    f"max_spikes={config.max_spikes} times; spikes are never dropped, pass "
                    "a larger max_spikes= to the network or use weaker weights"
                )
            if top <= cap:
                break
            cap = top  # re-run with a buffer that holds every spike
        return LayerRecord(
            spikes[..., :top].contiguous(),
            currents[..., :top].contiguous(),
            times,
            sources,
            order,
        )


def backward_layer(backend: Backend, record: LayerRecord, grad, weight, config: LayerConfig):
    """``(dL/d arrival times [B, E], dL/dW [N, N_in])`` by the kernels."""
    with torch.no_grad():
        times = record.times.contiguous()
        dtype = times.dtype
        B, N, K = times.shape
        E = record.arrival_times.shape[1]
        n_in = weight.shape[1]
        g = torch.where(torch.isfinite(times), grad.to(dtype), torch.zeros_like(times))
        groups = backend.partial_sums(B, N * n_in, dtype)
        d_w = torch.zeros(groups, N, n_in, dtype=dtype, device=times.device)
        d_arr = torch.zeros(B, E, dtype=dtype, device=times.device)
        args = (
            record.arrival_times.contiguous(),
            record.sources.to(torch.int64).contiguous(),
            weight.detach().to(dtype).contiguous(),
            times,
            record.currents.contiguous(),
            g.contiguous(),
            record.counts.to(torch.int64).contiguous(),
            d_w,
            d_arr,
            B,
            N,
            n_in,
            E,
            K,
            config.tau,
            config.threshold,
        )
        kernel = backend.kernel(source(), "eest_backward", dtype, _OPTIONS)
        kernel(launch_grid(B * N), (kernels.BLOCK,), args + ((groups,) if backend.groups else ()))
        return d_arr, d_w.sum(0).to(weight.dtype)


CUDA = kernels.cuda_backend()
HOST = kernels.cpu_backend(host_source, _GROUPS)
