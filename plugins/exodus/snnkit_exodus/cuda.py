"""The EXODUS scans as compiled kernels for feed-forward layers: CUDA (CuPy) and CPU.

Same results as :mod:`snnkit_exodus.scan` for feed-forward layers, given a
:class:`snnkit.kernels.Backend`. On CUDA, ``kernels/exodus.cu`` runs one thread per
neuron-column of the time-major ``[T, B*N]`` layout, sequentially over time (:data:`CUDA`;
CuPy is imported only when a kernel is compiled or launched, through :mod:`snnkit.kernels`).
On the CPU, ``kernels/exodus_host.cpp`` drives the same per-column step functions over
chunks of columns, time outermost (:data:`HOST`, built by :mod:`snnkit.host`). The
backward is compiled once per surrogate (its function is prepended to the source) and
per dtype.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from snnkit import kernels
from snnkit.kernels import Backend, broadcast, launch_grid
from snnkit.neurons import LIFCoefficients, LIFState
from snnkit.surrogates import Surrogate, kernel_source
from snnkit_exodus.scan import OutputGrads, ScanConfig

# no FMA contraction: the kernels round like the torch scan, step for step
OPTIONS = ("--fmad=false",)


@functools.cache
def _source() -> str:
    return kernels.read_source("snnkit_exodus", "kernels/exodus.cu")


@functools.cache
def host_source() -> str:
    """The CPU driver's source (``*_host`` entry points over chunks of columns)."""
    return kernels.read_source("snnkit_exodus", "kernels/exodus_host.cpp")


CUDA = kernels.cuda_backend()
HOST = kernels.cpu_backend(host_source)


def forward_source() -> str:
    """The kernel source the forward pass compiles (surrogate declared, not defined)."""
    return kernel_source(_source())


def backward_source(surrogate: Surrogate) -> str:
    """The kernel source the reverse scan compiles: the surrogate's device function first."""
    return kernel_source(_source(), surrogate)


def forward_scan(
    backend: Backend, current, state: LIFState, c: LIFCoefficients, config: ScanConfig
):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final state (vpost, i, a), as
    :func:`snnkit_exodus.scan.forward_scan` for a feed-forward layer."""
    steps, batch, neurons = current.shape
    columns = batch * neurons
    alpha, beta, theta, m = c
    synaptic = beta is not None
    current = current.contiguous()
    v_all = torch.empty_like(current)
    a_all = torch.empty_like(current)
    vpost = current.new_empty(batch, neurons)
    a = current.new_empty(batch, neurons)
    i = current.new_empty(batch, neurons) if synaptic else None
    i0 = None
    if synaptic:
        i0 = (
            current.new_zeros(batch, neurons)
            if state.i is None
            else broadcast(state.i, batch, neurons)
        )
    kernel = backend.kernel(forward_source(), "exodus_forward", current.dtype, OPTIONS)
    kernel(
        launch_grid(columns),
        (kernels.BLOCK,),
        (
            current,
            broadcast(state.v, batch, neurons),
            i0,
            broadcast(state.a, batch, neurons),
            broadcast(alpha, neurons),
            broadcast(beta, neurons),
            broadcast(theta, neurons),
            broadcast(m, neurons),
            v_all,
            a_all,
            vpost,
            i,
            a,
            steps,
            columns,
            neurons,
            int(synaptic),
            int(config.multi),
            -1 if config.max_spikes is None else int(config.max_spikes),
        ),
    )
    if not synaptic:
        i = current[-1]  # as the torch scan: without a synaptic stage i_t is the input x_t
    return v_all, a_all, LIFState(vpost, i, a)


def reverse_scan(
    backend: Backend,
    v_all,
    grads: OutputGrads,
    state: LIFState,
    c: LIFCoefficients,
    config: ScanConfig,
    need,
) -> dict[str, Any]:
    """Gradients as :func:`snnkit_exodus.scan.reverse_scan` for a feed-forward layer.

    Per-neuron parameter gradients come back per sample (``[B, N]``); the caller reduces.
    """
    steps, batch, neurons = v_all.shape
    columns = batch * neurons
    alpha, beta, theta, m = c
    synaptic = beta is not None
    need_alpha = bool(need.get("alpha"))
    need_beta = bool(need.get("beta")) and synaptic
    need_theta = bool(need.get("theta"))
    v_all = v_all.contiguous()
    g_spikes = torch.zeros_like(v_all) if grads.spikes is None else grads.spikes.contiguous()
    g_i = grads.i if synaptic else None

    def per_column() -> torch.Tensor:
        return v_all.new_empty(batch, neurons)

    g_current = torch.empty_like(v_all)
    g_v0 = per_column()
    g_i0 = per_column() if synaptic else None
    g_alpha = per_column() if need_alpha else None
    g_beta = per_column() if need_beta else None
    g_theta = per_column() if need_theta else None
    i0 = None
    if need_beta:
        i0 = (
            v_all.new_zeros(batch, neurons)
            if state.i is None
            else broadcast(state.i, batch, neurons)
        )
    kernel = backend.kernel(
        backward_source(config.surrogate), "exodus_backward", v_all.dtype, OPTIONS
    )
    kernel(
        launch_grid(columns),
        (kernels.BLOCK,),
        (
            v_all,
            g_spikes,
            broadcast(grads.vpost, batch, neurons),
            broadcast(g_i, batch, neurons),
            broadcast(grads.a, batch, neurons),
            broadcast(state.v, batch, neurons),
            i0,
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
            int(config.multi),
            -1 if config.max_spikes is None else int(config.max_spikes),
            int(grads.vpost is not None),
            int(g_i is not None),
            int(grads.a is not None),
            int(need_alpha),
            int(need_beta),
            int(need_theta),
            int(bool(config.m_is_theta)),
        ),
    )
    return {
        "current": g_current,
        "v0": g_v0,
        "i0": g_i0,
        "a0": None,
        "alpha": g_alpha,
        "beta": g_beta,
        "theta": g_theta,
        "w_rec": None,
    }
