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
sample's spike order for the backward (``LayerRecord.log``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from snnkit import host, kernels
from snnkit.errors import SnnkitError
from snnkit_eventprop.simulate import LayerConfig, LayerRecord, arrivals

__all__ = [
    "CUDA",
    "HOST",
    "Kernels",
    "adjoint_layer",
    "adjoint_recurrent_layer",
    "available",
    "run_layer",
    "run_recurrent_layer",
    "source",
]

_BLOCK = 128
_OPTIONS = ("--fmad=false",)
_CAP = 8  # first spike-buffer size per neuron; grown (re-run) when a neuron fires more
_GROUPS = 32  # CPU backward: sample groups, each with its own weight-gradient slice


def available() -> bool:
    """True when CuPy is importable and a CUDA device is present."""
    return kernels.cupy_available()


@functools.cache
def source() -> str:
    return kernels.read_source("snnkit_eventprop", "kernels/eventprop.cu")


@functools.cache
def host_source() -> str:
    return kernels.read_source("snnkit_eventprop", "kernels/eventprop_host.cpp")


@dataclass(frozen=True)
class Kernels:
    """Where the kernels run: ``compile(source, name, dtype, options)`` builds
    ``name + suffix`` from the CUDA source plus ``extra()`` (a CPU driver's source);
    ``groups`` > 0: the backward writes per-group weight-gradient slices (CPU driver)."""

    compile: Callable[..., Any]
    suffix: str = ""
    extra: Callable[[], str] = str
    groups: int = 0

    def kernel(self, name: str, dtype: torch.dtype):
        return self.compile(source() + self.extra(), name + self.suffix, dtype, _OPTIONS)

    def run_layer(self, pre, weight, config, recurrent=None) -> LayerRecord:
        if recurrent is not None:
            return run_recurrent_layer(pre, weight, recurrent, config, self)
        return run_layer(pre, weight, config, self)

    def adjoint_layer(self, record, grad, weight, config, recurrent=None):
        """``(dL/d arrivals, dL/dW, dL/dR or None)``."""
        if recurrent is not None:
            return adjoint_recurrent_layer(record, grad, weight, recurrent, config, self)
        return (*adjoint_layer(record, grad, weight, config, self), None)


# looked up at call time, so a test can swap kernels.compile_kernel for an emulation
CUDA = Kernels(lambda *args: kernels.compile_kernel(*args))
HOST = Kernels(lambda *args: host.compile_kernel(*args), "_host", host_source, _GROUPS)


def _grid(threads: int) -> tuple[int]:
    return (max(1, (threads + _BLOCK - 1) // _BLOCK),)


def run_layer(
    pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig, backend: Kernels = CUDA
) -> LayerRecord:
    """Feed-forward layer forward pass by the kernels (same record as the torch path)."""
    with torch.no_grad():
        times, sources, order = arrivals(pre)
        times, sources = times.contiguous(), sources.to(torch.int64).contiguous()
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        kernel = backend.kernel("eventprop_forward", pre.dtype)
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
            _check_bound(counts, config)
            if top <= cap:
                break
            cap = top  # re-run with a buffer that holds every spike
        return LayerRecord(
            spikes[..., :top].contiguous(), currents[..., :top].contiguous(), times, sources, order
        )


def adjoint_layer(
    record: LayerRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    config: LayerConfig,
    backend: Kernels = CUDA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/d arrival times [B, E], dL/dW [N, N_in])`` by the kernels."""
    with torch.no_grad():
        times = record.times.contiguous()
        dtype = times.dtype
        B, N, K = times.shape
        E = record.arrival_times.shape[1]
        n_in = weight.shape[1]
        g = torch.where(torch.isfinite(times), grad.to(dtype), torch.zeros_like(times))
        groups = min(backend.groups, B)
        d_w = torch.zeros(max(groups, 1), N, n_in, dtype=dtype, device=times.device)
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
        kernel = backend.kernel("eventprop_backward", dtype)
        kernel(_grid(B * N), (_BLOCK,), args + ((groups,) if backend.groups else ()))
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
    pre: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor,
    config: LayerConfig,
    backend: Kernels = CUDA,
) -> LayerRecord:
    """Recurrent layer forward pass by the kernels: spikes, currents and each sample's log."""
    with torch.no_grad():
        times, sources, order = arrivals(pre)
        times, sources = times.contiguous(), sources.to(torch.int64).contiguous()
        B, E = times.shape
        N, n_in = weight.shape
        w = weight.detach().to(pre.dtype).contiguous()
        r = recurrent.detach().to(pre.dtype).contiguous()
        kernel = backend.kernel("eventprop_recurrent_forward", pre.dtype)
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
                _grid(B),
                (_BLOCK,),
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
    record: LayerRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor,
    config: LayerConfig,
    backend: Kernels = CUDA,
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
        groups = max(min(backend.groups, B), 1)
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
        kernel = backend.kernel("eventprop_recurrent_backward", dtype)
        kernel(_grid(B), (_BLOCK,), args + ((groups,) if backend.groups else ()))
        return d_arr, d_w.sum(0).to(weight.dtype), d_r.sum(0).to(recurrent.dtype)
