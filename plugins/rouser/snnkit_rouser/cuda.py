"""The Rouser scans as CUDA kernels (CuPy) for CUDA tensors of feed-forward layers.

A drop-in for :mod:`snnkit_rouser.scan` (same signatures and results): ``kernels/rouser.cu``
runs one thread per neuron-column of the time-major ``[T, B*N]`` layout, sequentially over
time, and accumulates the threshold gradient in registers. The backward kernel is compiled
once per surrogate (its device function is prepended) and per dtype. CuPy is imported only
when a kernel is compiled or launched (through :mod:`snnkit.kernels`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from snnkit import kernels
from snnkit.kernels import broadcast, launch_grid
from snnkit.surrogates import Surrogate, kernel_source
from snnkit_rouser import scan

# no FMA contraction: the kernels round like the torch scan, step for step
OPTIONS = ("--fmad=false",)
CUDA = kernels.cuda_backend()


@functools.cache
def _source() -> str:
    return kernels.read_source("snnkit_rouser", "kernels/rouser.cu")


def forward_source() -> str:
    """The kernel source the forward pass compiles (surrogate declared, not defined)."""
    return kernel_source(_source())


def backward_source(surrogate: Surrogate) -> str:
    """The kernel source the reverse scan compiles: the surrogate's device function first."""
    return kernel_source(_source(), surrogate)


def forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, dyn: scan.Dynamics):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final state (u, i, a), as
    :func:`snnkit_rouser.scan.forward_scan` for a feed-forward layer (see :func:`snnkit.kernels.columns_unfit`)."""
    steps, batch, neurons = current.shape
    columns = batch * neurons
    synaptic = beta is not None
    current = current.contiguous()
    v_all = torch.empty_like(current)
    a_all = torch.empty_like(current)
    u = current.new_empty(batch, neurons)
    a = current.new_empty(batch, neurons)
    i = current.new_empty(batch, neurons) if synaptic else None
    if synaptic:
        i0 = current.new_zeros(batch, neurons) if i0 is None else broadcast(i0, batch, neurons)
    kernel = CUDA.kernel(forward_source(), "rouser_forward", current.dtype, OPTIONS)
    kernel(
        launch_grid(columns),
        (kernels.BLOCK,),
        (
            current,
            broadcast(v0, batch, neurons),
            i0 if synaptic else None,
            broadcast(a0, batch, neurons),
            broadcast(alpha, neurons),
            broadcast(beta, neurons),
            broadcast(theta, neurons),
            broadcast(m, neurons),
            v_all,
            a_all,
            u,
            i,
            a,
            steps,
            columns,
            neurons,
            int(synaptic),
            int(dyn.multi),
            -1 if dyn.max_spikes is None else int(dyn.max_spikes),
            int(dyn.reset_zero),
        ),
    )
    if not synaptic:
        i = current[-1]  # as the torch scan: without a synaptic stage i_t is the input x_t
    return v_all, a_all, (u, i, a)


def reverse_scan(
    v_all, g_spikes, g_u, g_i, g_a, v0, i0, a0, alpha, beta, theta, m, w_rec, surrogate, dyn, need
) -> dict[str, Any]:
    """Gradients as :func:`snnkit_rouser.scan.reverse_scan` (parameters reduced to ``[N]``),
    for a feed-forward layer."""
    steps, batch, neurons = v_all.shape
    columns = batch * neurons
    synaptic = beta is not None
    need_alpha = bool(need.get("alpha"))
    need_beta = bool(need.get("beta")) and synaptic
    need_theta = bool(need.get("theta"))
    v_all = v_all.contiguous()
    g_spikes = torch.zeros_like(v_all) if g_spikes is None else g_spikes.contiguous()

    def state() -> torch.Tensor:
        return v_all.new_empty(batch, neurons)

    g_current = torch.empty_like(v_all)
    g_v0 = state()
    g_i0 = state() if synaptic else None
    g_alpha = state() if need_alpha else None
    g_beta = state() if need_beta else None
    g_theta = state() if need_theta else None
    g_i = g_i if synaptic else None
    if need_beta:
        i0 = v_all.new_zeros(batch, neurons) if i0 is None else broadcast(i0, batch, neurons)
    kernel = CUDA.kernel(backward_source(surrogate), "rouser_backward", v_all.dtype, OPTIONS)
    kernel(
        launch_grid(columns),
        (kernels.BLOCK,),
        (
            v_all,
            g_spikes,
            broadcast(g_u, batch, neurons),
            broadcast(g_i, batch, neurons),
            broadcast(g_a, batch, neurons),
            broadcast(v0, batch, neurons),
            i0 if need_beta else None,
            broadcast(alpha, neurons),
            broadcast(beta, neurons),
            broadcast(theta, neurons),
            broadcast(m, neurons),
            g_current,
            g_v0,
            g_i0,
            g_alpha,
            g_beta,
            g_theta,
            steps,
            columns,
            neurons,
            int(synaptic),
            int(dyn.multi),
            -1 if dyn.max_spikes is None else int(dyn.max_spikes),
            int(dyn.reset_zero),
            int(dyn.through),
            int(g_u is not None),
            int(g_i is not None),
            int(g_a is not None),
            int(need_alpha),
            int(need_beta),
            int(need_theta),
            int(dyn.m_is_theta),
        ),
    )

    def reduce(x):
        return None if x is None else x.sum(0)

    return {
        "current": g_current,
        "v0": g_v0,
        "i0": g_i0,
        "a0": None,
        "w_rec": None,
        "alpha": reduce(g_alpha),
        "beta": reduce(g_beta),
        "theta": reduce(g_theta),
    }
