"""Grid mode (:mod:`snnkit_eventprop.grid`) by the compiled kernels, CUDA (CuPy) and CPU.

The same arithmetic as the torch grid path, step for step, in ``kernels/eventprop.cu``
(``ep_grid_forward_sample`` / ``ep_grid_backward_sample``): one sample at a time, its
neurons in a loop, since a step's recurrent jumps need all of the sample's spikes of that
step. On CUDA one thread per sample (:data:`snnkit_eventprop.cuda.CUDA`, weight gradients
by ``atomicAdd``); on the CPU one OpenMP iteration per sample
(:data:`snnkit_eventprop.cuda.HOST`), the backward summing the weight gradients over fixed
groups of samples, so results do not depend on the thread count. Memory is O(arrivals +
spikes): the backward sums ``dW``, ``dR`` and the arrival-time gradients during its sweep
and keeps no per-step state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnkit.events import spikes_in_time_order
from snnkit.kernels import BLOCK, Backend, launch_grid
from snnkit_eventprop.cuda import _OPTIONS, _check_bound, source
from snnkit_eventprop.grid import schedule
from snnkit_eventprop.regularise import count_regularised
from snnkit_eventprop.simulate import LayerConfig

__all__ = ["GridRecord", "adjoint", "grid_layer", "run"]

_CAP = 32  # first spike-buffer size per neuron; grown (re-run) when a neuron fires more
# the next forward's spike-buffer size per (neurons, steps): twice the last batch's most
# spikes of a neuron (which varies ~2x from batch to batch at SHD scale), shrinking by 1/8
# per batch at most, so a training run's forward kernel runs once per batch
_LAST_CAP: dict[tuple[int, int], int] = {}
_GROUPS = 16  # CPU backward: at most this many sample groups, each with its own dW slice


@dataclass
class GridRecord:
    """What the grid forward leaves for its backward (all detached): spike times, ``I(t*)``
    and the step of each spike ``[B, N, K]``; the arrivals in time order ``[B, E]`` (times,
    injection steps and sources as ``int32``, their slots in the input when its gradient is
    wanted, else ``None``); ``steps`` and the grid times."""

    times: torch.Tensor
    currents: torch.Tensor
    spike_step: torch.Tensor
    counts: torch.Tensor
    arrival_times: torch.Tensor
    bins: torch.Tensor
    sources: torch.Tensor
    order: torch.Tensor | None
    steps: int
    grid: torch.Tensor


def _arrivals(pre: torch.Tensor, config: LayerConfig, dt: float, keep_order: bool):
    """``(steps, times, injection steps, sources, slots or None, grid times)``: the input
    spikes as :func:`snnkit.events.spikes_in_time_order` gives them (``[B, E]``, sources
    ``int32``), each one's step as :func:`snnkit_eventprop.grid.schedule` (``int32``, past
    ``steps`` for padding), computed row by row."""
    times, sources, order = spikes_in_time_order(pre, keep_order, torch.int32)
    steps, _, grid = schedule(times[:0], config, dt)
    bins = torch.empty(times.shape, dtype=torch.int32, device=pre.device)
    for b, row in enumerate(times):
        bins[b] = schedule(row[None], config, dt)[1][0]
    return steps, times, bins, sources, order, grid


def _transposed(w: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if w is None else w.detach().to(dtype).t().contiguous()


def run(
    backend: Backend,
    pre: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    config: LayerConfig,
    dt: float,
    keep_order: bool = True,
) -> GridRecord:
    """A layer's grid-mode forward pass by the kernels (the torch grid path's spikes);
    ``keep_order=False`` when no input gradient will be asked for."""
    with torch.no_grad():
        steps, times, bins, sources, order, grid = _arrivals(pre, config, dt, keep_order)
        B, E = times.shape
        N = weight.shape[0]
        w_t = _transposed(weight, pre.dtype)
        r_t = _transposed(recurrent, pre.dtype)
        kernel = backend.kernel(source(), "eventprop_grid_forward", pre.dtype, _OPTIONS)
        bound = max(1, min(config.max_spikes, steps))
        cap = min(_LAST_CAP.get((N, steps), _CAP), bound)
        scratch = pre.new_zeros(5, B, N)
        while True:
            spikes = pre.new_full((B, N, cap), float("inf"))
            currents = pre.new_zeros(B, N, cap)
            spike_step = torch.full((B, N, cap), -1, dtype=torch.int64, device=pre.device)
            counts = torch.zeros(B, N, dtype=torch.int64, device=pre.device)
            kernel(
                launch_grid(B),
                (BLOCK,),
                (times, bins, sources, w_t, r_t, grid, spikes, currents,
                 spike_step, counts, scratch, B, N, E, steps, cap, config.max_spikes,
                 float(dt), config.tau_mem, config.tau_syn, config.threshold,
                 config.v_after, config.duration),
            )  # fmt: skip
            _check_bound(counts, config)
            top = int(counts.max()) if counts.numel() else 0
            if top <= cap:
                break
            cap = top  # re-run with a buffer that holds every spike
        last = _LAST_CAP.get((N, steps), _CAP)
        _LAST_CAP[(N, steps)] = min(max(_CAP, 2 * top, last - last // 8), bound)
        trim = lambda x: x[..., :top].contiguous()  # noqa: E731
        return GridRecord(
            trim(spikes), trim(currents), trim(spike_step), counts, times, bins, sources, order,
            steps, grid,
        )  # fmt: skip


def adjoint(
    backend: Backend,
    record: GridRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    config: LayerConfig,
    dt: float,
    want_arrivals: bool = True,
):
    """``(dL/d arrival times [B, E] or None, dL/dW, dL/dR or None)`` by the kernels."""
    with torch.no_grad():
        times = record.times
        dtype, device = times.dtype, times.device
        B, N, K = times.shape
        E = record.arrival_times.shape[1]
        n_in = weight.shape[1]
        g = torch.where(torch.isfinite(times), grad.to(dtype), torch.zeros_like(times))
        size = N * (n_in + (0 if recurrent is None else N))
        groups = backend.partial_sums(B, size, dtype, _GROUPS)
        d_w = torch.zeros(groups, n_in, N, dtype=dtype, device=device)
        d_r = None if recurrent is None else torch.zeros(groups, N, N, dtype=dtype, device=device)
        d_arr = torch.zeros(B, E, dtype=dtype, device=device) if want_arrivals else None
        scratch = torch.zeros(3, B, N, dtype=dtype, device=device)
        pk = torch.zeros(B, N, dtype=torch.int64, device=device)
        args = (
            record.arrival_times, record.bins, record.sources,
            _transposed(weight, dtype), _transposed(recurrent, dtype), record.grid, times,
            record.currents, record.spike_step, g.contiguous(), record.counts, scratch, pk,
            d_w, d_r, d_arr, B, N, n_in, E, record.steps, max(K, 1), float(dt),  # K = 0: never read
            config.tau_mem, config.tau_syn, config.threshold, config.v_after,
        )  # fmt: skip
        kernel = backend.kernel(source(), "eventprop_grid_backward", dtype, _OPTIONS)
        kernel(launch_grid(B), (BLOCK,), args + ((groups,) if backend.groups else ()))
        d_r = None if d_r is None else d_r.sum(0).t().to(recurrent.dtype)
        return d_arr, d_w.sum(0).t().to(weight.dtype), d_r


class _KernelGridLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, weight, recurrent, config: LayerConfig, dt: float, backend: Backend):
        record = run(backend, pre, weight, recurrent, config, dt, ctx.needs_input_grad[0])
        ctx.record, ctx.config, ctx.dt, ctx.backend = record, config, dt, backend
        ctx.pre_shape = pre.shape
        ctx.save_for_backward(weight, recurrent)
        return record.times.to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        weight, recurrent = ctx.saved_tensors
        record: GridRecord = ctx.record
        grad = count_regularised(grad, record.times, record.currents, ctx.config)
        want = ctx.needs_input_grad[0]
        d_arr, d_w, d_r = adjoint(
            ctx.backend, record, grad, weight, recurrent, ctx.config, ctx.dt, want
        )
        d_pre = None
        if want:
            B = ctx.pre_shape[0]
            d_pre = d_arr.new_zeros(B, ctx.pre_shape[1] * ctx.pre_shape[2])
            d_pre = d_pre.scatter_add_(1, record.order, d_arr).view(ctx.pre_shape)
        return d_pre, d_w, d_r, None, None, None


def grid_layer(pre, weight, recurrent, config: LayerConfig, dt: float, backend: Backend):
    """Spike times ``[B, N, K]`` of a grid-mode layer run by ``backend``'s kernels."""
    return _KernelGridLayer.apply(pre, weight, recurrent, config, float(dt), backend)
