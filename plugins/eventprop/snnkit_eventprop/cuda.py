"""EventProp's layers as compiled kernels, CUDA (CuPy) and CPU: a drop-in for the torch
path (same spike times and currents, same gradients).

``kernels/eventprop.cu`` holds per-(sample, neuron) functions for the forward (every
crossing, window by window between the sorted arrivals) and the adjoint backward (merged
arrivals and own spikes). On CUDA they run one thread each (:data:`CUDA`, weight and
arrival-time gradients by ``atomicAdd``; CuPy is imported only when a kernel is compiled
or launched, through :mod:`snnkit.kernels`). On the CPU, ``kernels/eventprop_host.cpp``
loops over them with OpenMP (:data:`HOST`, built by :mod:`snnkit.host`); its backward
sums the weight gradient over fixed groups of samples, so results do not depend on the
thread count. Recurrent layers (events in global time order, since a spike changes the
other neurons' currents) run one sample per thread / OpenMP iteration and log each
sample's spike order for the backward (``LayerRecord.log``). The grid mode's kernels
(same source, same backends) are driven by :mod:`snnkit_eventprop.grid_kernels`.
"""

from __future__ import annotations

import functools

import torch

from snnkit import kernels
from snnkit.errors import SnnkitError
from snnkit.events import spikes_in_time_order
from snnkit.kernels import BLOCK, Backend, launch_grid
from snnkit_eventprop.simulate import LayerConfig, LayerRecord

__all__ = [
    "CUDA",
    "HOST",
    "adjoint",
    "adjoint_layer",
    "adjoint_recurrent_layer",
    "run",
    "run_layer",
    "run_recurrent_layer",
    "source",
]

_OPTIONS = ("--fmad=false",)
_CAP = 8  # first spike-buffer size per neuron; grown (re-run) when a neuron fires more
_GROUPS = 32  # CPU backward: sample groups, each with its own weight-gradient slice


@functools.cache
def source() -> str:
    return kernels.read_source("snnkit_eventprop", "kernels/eventprop.cu")


@functools.cache
def host_source() -> str:
    return kernels.read_source("snnkit_eventprop", "kernels/eventprop_host.cpp")


def run_layer(
    backend: Backend, pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig
) -> LayerRecord:
    """Feed-forward layer forward pass by the kernels (same record as the torch path)."""
    with torch.no_grad():
        times, sources, order = spikes_in_time_order(pre)
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        kernel = backend.kernel(source(), "eventprop_forward", pre.dtype, _OPTIONS)
        cap = min(_CAP, config.max_spikes)
        while True:
            spikes = pre.new_full((B, N, cap), float("inf"))
            currents = pre.new_zeros(B, N, cap)
            counts = torch.zeros(B, N, dtype=torch.int64, device=pre.device)
            kernel(
                launch_grid(B * N),
                (BLOCK,),
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
            _check_bound(counts, config)
            if top <= cap:
                break
            cap = top  # re-run with a buffer that holds every spike
        return LayerRecord(
            spikes[..., :top].contiguous(), currents[..., :top].contiguous(), times, sources, order
        )


def adjoint_layer(
    backend: Backend,
    record: LayerRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    config: LayerConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
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
        counts = record.counts.to(torch.int64).contiguous()
        args = (
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
        )
        kernel = backend.kernel(source(), "eventprop_backward", dtype, _OPTIONS)
        kernel(launch_grid(B * N), (BLOCK,), args + ((groups,) if backend.groups else ()))
        return d_arr, d_w.sum(0).to(weight.dtype)


def _check_bound(counts: torch.Tensor, config: LayerConfig) -> None:
    if counts.numel() and int(counts.max()) > config.max_spikes:
        b, n = (counts > config.max_spikes).nonzero()[0].tolist()
        raise SnnkitError(
            f"{config.name}: neuron {n} of sample {b} fires more than "
            f"max_spikes={config.max_spikes} times; spikes are never dropped, pass a "
            "larger max_spikes= to the network or use weaker weights"
        )


def run_recurrent_layer(
    backend: Backend,
    pre: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor,
    config: LayerConfig,
) -> LayerRecord:
    """Recurrent layer forward pass by the kernels: spikes, currents and each sample's log."""
    with torch.no_grad():
        times, sources, order = spikes_in_time_order(pre)
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        r = recurrent.detach().to(pre.dtype).contiguous()
        kernel = backend.kernel(source(), "eventprop_recurrent_forward", pre.dtype, _OPTIONS)
        cap = min(_CAP, config.max_spikes)
        long = {"dtype": torch.int64, "device": pre.device}
        while True:
            spikes = pre.new_full((B, N, cap), float("inf"))
            currents = pre.new_zeros(B, N, cap)
            counts = torch.zeros(B, N, **long)
            log_neuron = torch.zeros(B, N * cap, **long)
            log_before = torch.zeros(B, N * cap, **long)
            totals = torch.zeros(B, **long)
            state = pre.new_zeros(2, B, N)
            kernel(
                launch_grid(B),
                (BLOCK,),
                (times, sources, w, r, spikes, currents, counts, log_neuron, log_before,
                 totals, state[0], state[1], B, N, n_in, E, cap, config.max_spikes,
                 config.tau_mem, config.tau_syn, config.threshold,
                 int(config.reset == "zero"), config.v_reset, config.duration),
            )  # fmt: skip
            _check_bound(counts, config)
            top = int(counts.max()) if counts.numel() else 0
            if top <= cap:
                break
            cap = top
        length = int(totals.max()) if totals.numel() else 0
        log = (log_neuron[:, :length].contiguous(), log_before[:, :length].contiguous(), totals)
        return LayerRecord(
            spikes[..., :top].contiguous(),
            currents[..., :top].contiguous(),
            times,
            sources,
            order,
            log=log,
        )


def adjoint_recurrent_layer(
    backend: Backend,
    record: LayerRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor,
    config: LayerConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/d arrival times [B, E], dL/dW [N, N_in], dL/dR [N, N])`` by the kernels."""
    with torch.no_grad():
        times = record.times.contiguous()
        dtype, device = times.dtype, times.device
        B, N, K = times.shape
        E = record.arrival_times.shape[1]
        n_in = weight.shape[1]
        log_neuron, log_before, totals = record.log
        g = torch.where(torch.isfinite(times), grad.to(dtype), torch.zeros_like(times))
        groups = backend.partial_sums(B, N * (n_in + N), dtype)
        d_w = torch.zeros(groups, N, n_in, dtype=dtype, device=device)
        d_r = torch.zeros(groups, N, N, dtype=dtype, device=device)
        d_arr = torch.zeros(B, E, dtype=dtype, device=device)
        scratch = torch.zeros(2, B, N, dtype=dtype, device=device)
        pk = torch.zeros(B, N, dtype=torch.int64, device=device)
        args = (
            record.arrival_times.contiguous(),
            record.sources.to(torch.int64).contiguous(),
            weight.detach().to(dtype).contiguous(),
            recurrent.detach().to(dtype).contiguous(),
            times,
            record.currents.contiguous(),
            g.contiguous(),
            record.counts.to(torch.int64).contiguous(),
            log_neuron,
            log_before,
            totals,
            scratch[0],
            scratch[1],
            pk,
            d_w,
            d_r,
            d_arr,
            B,
            N,
            n_in,
            E,
            K,
            log_neuron.shape[1],
            config.tau_mem,
            config.tau_syn,
            config.threshold,
            config.v_after,
            config.duration,
        )
        kernel = backend.kernel(source(), "eventprop_recurrent_backward", dtype, _OPTIONS)
        kernel(launch_grid(B), (BLOCK,), args + ((groups,) if backend.groups else ()))
        return d_arr, d_w.sum(0).to(weight.dtype), d_r.sum(0).to(recurrent.dtype)


def run(backend: Backend, pre, weight, recurrent, config: LayerConfig) -> LayerRecord:
    """A layer's forward pass by the kernels, feed-forward or (``recurrent`` not None) recurrent."""
    if recurrent is not None:
        return run_recurrent_layer(backend, pre, weight, recurrent, config)
    return run_layer(backend, pre, weight, config)


def adjoint(backend: Backend, record: LayerRecord, grad, weight, recurrent, config: LayerConfig):
    """``(dL/d arrival times, dL/dW, dL/dR or None)`` by the kernels."""
    if recurrent is not None:
        return adjoint_recurrent_layer(backend, record, grad, weight, recurrent, config)
    return (*adjoint_layer(backend, record, grad, weight, config), None)


CUDA = kernels.cuda_backend()
HOST = kernels.cpu_backend(host_source, _GROUPS)
