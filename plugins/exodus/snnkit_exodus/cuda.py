"""The EXODUS scans as compiled kernels for feed-forward layers: CUDA (CuPy) and CPU.

Same signatures and results as :mod:`snnkit_exodus.scan`, of which each
:class:`KernelScan` is a drop-in. On CUDA, ``kernels/exodus.cu`` runs one thread per
neuron-column of the time-major ``[T, B*N]`` layout, sequentially over time (:data:`CUDA`;
CuPy is imported only when a kernel is compiled or launched, through :mod:`snnkit.kernels`).
On the CPU, ``kernels/exodus_host.cpp`` drives the same per-column step functions over
chunks of columns, time outermost (:data:`HOST`, built by :mod:`snnkit.host`). The
backward is compiled once per surrogate (its function is prepended to the source) and
per dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from snnkit import host, kernels
from snnkit.surrogates import CUDA_FUNCTION, Surrogate
from snnkit_exodus import scan

_BLOCK = 128
# no FMA contraction: the kernels round like the torch scan, step for step
_OPTIONS = ("--fmad=false",)
# the forward never calls the surrogate: a declaration lets the source compile without one
_DECLARE_SURROGATE = f"template <typename T> __host__ __device__ T {CUDA_FUNCTION}(T v, T theta);\n"


def available() -> bool:
    """True when CuPy is importable and a CUDA device is present."""
    return kernels.cupy_available()


@functools.cache
def _source() -> str:
    return kernels.read_source("snnkit_exodus", "kernels/exodus.cu")


@functools.cache
def _host_source() -> str:
    return kernels.read_source("snnkit_exodus", "kernels/exodus_host.cpp")


def forward_source() -> str:
    """The kernel source the forward pass compiles (surrogate declared, not defined)."""
    return _DECLARE_SURROGATE + _source()


def backward_source(surrogate: Surrogate) -> str:
    """The kernel source the reverse scan compiles: the surrogate's device function first."""
    return surrogate.cuda_source(CUDA_FUNCTION) + "\n" + _source()


@dataclass(frozen=True)
class KernelScan:
    """The scans run by compiled kernels: ``compile(source, name, dtype, options)`` builds
    ``name + suffix`` from the CUDA source plus ``extra`` (a CPU driver's source)."""

    compile: Callable[..., Any]
    suffix: str = ""
    extra: Callable[[], str] = str

    def _kernel(self, source: str, name: str, dtype: torch.dtype):
        return self.compile(source + self.extra(), name + self.suffix, dtype, _OPTIONS)

    def forward_scan(self, current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi):
        return _forward_scan(
            self, current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi
        )

    def reverse_scan(self, *args, **kwargs) -> dict[str, Any]:
        return _reverse_scan(self, *args, **kwargs)


# looked up at call time, so a test can swap kernels.compile_kernel for an emulation
CUDA = KernelScan(lambda *args: kernels.compile_kernel(*args))
HOST = KernelScan(lambda *args: host.compile_kernel(*args), "_host", _host_source)


def _fits(current: torch.Tensor, params: tuple[torch.Tensor | None, ...], w_rec) -> bool:
    """The kernels' case: feed-forward, at least one step and column, ``[N]``-shaped parameters."""
    if w_rec is not None or current.dim() != 3 or current.numel() == 0:
        return False
    return all(p is None or p.dim() <= 1 for p in params)


def _grid(columns: int) -> tuple[int]:
    return ((columns + _BLOCK - 1) // _BLOCK,)


def _flat(x: torch.Tensor | None, *shape: int) -> torch.Tensor | None:
    """``x`` broadcast to ``shape`` and laid out contiguously (None stays None)."""
    return None if x is None else x.expand(*shape).contiguous()


def forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final (vpost, i, a), on CUDA."""
    return CUDA.forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi)


def reverse_scan(*args, **kwargs) -> dict[str, Any]:
    """Gradients of the CUDA scan (see :func:`_reverse_scan`)."""
    return CUDA.reverse_scan(*args, **kwargs)


def _forward_scan(backend, current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi):
    if not _fits(current, (alpha, beta, theta, m), w_rec):
        return scan.forward_scan(
            current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi
        )
    steps, batch, neurons = current.shape
    columns = batch * neurons
    synaptic = beta is not None
    current = current.contiguous()
    v_all = torch.empty_like(current)
    a_all = torch.empty_like(current)
    vpost = current.new_empty(batch, neurons)
    a = current.new_empty(batch, neurons)
    i = current.new_empty(batch, neurons) if synaptic else None
    if synaptic:
        i0 = current.new_zeros(batch, neurons) if i0 is None else _flat(i0, batch, neurons)
    kernel = backend._kernel(forward_source(), "exodus_forward", current.dtype)
    kernel(
        _grid(columns),
        (_BLOCK,),
        (
            current,
            _flat(v0, batch, neurons),
            i0 if synaptic else None,
            _flat(a0, batch, neurons),
            _flat(alpha, neurons),
            _flat(beta, neurons),
            _flat(theta, neurons),
            _flat(m, neurons),
            v_all,
            a_all,
            vpost,
            i,
            a,
            steps,
            columns,
            neurons,
            int(synaptic),
            int(multi),
            -1 if max_spikes is None else int(max_spikes),
        ),
    )
    if not synaptic:
        i = current[-1]  # as the torch scan: without a synaptic stage i_t is the input x_t
    return v_all, a_all, (vpost, i, a)


def _reverse_scan(
    backend,
    v_all,
    grad_spikes,
    g_vpost,
    g_i,
    g_a,
    v0,
    i0,
    a0,
    alpha,
    beta,
    theta,
    m,
    w_rec,
    surrogate,
    max_spikes,
    multi,
    need,
    m_is_theta,
) -> dict[str, Any]:
    """Gradients w.r.t. current, v0, i0, a0, alpha, beta, theta, w_rec (None where not needed).

    Per-neuron parameter gradients come back per sample (``[B, N]``); the caller reduces.
    """
    if not _fits(v_all, (alpha, beta, theta, m), w_rec):
        return scan.reverse_scan(
            v_all,
            grad_spikes,
            g_vpost,
            g_i,
            g_a,
            v0,
            i0,
            a0,
            alpha,
            beta,
            theta,
            m,
            w_rec,
            surrogate,
            max_spikes,
            multi,
            need,
            m_is_theta,
        )
    steps, batch, neurons = v_all.shape
    columns = batch * neurons
    synaptic = beta is not None
    need_alpha = bool(need.get("alpha"))
    need_beta = bool(need.get("beta")) and synaptic
    need_theta = bool(need.get("theta"))
    v_all = v_all.contiguous()
    grad_spikes = torch.zeros_like(v_all) if grad_spikes is None else grad_spikes.contiguous()

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
        i0 = v_all.new_zeros(batch, neurons) if i0 is None else _flat(i0, batch, neurons)
    kernel = backend._kernel(backward_source(surrogate), "exodus_backward", v_all.dtype)
    kernel(
        _grid(columns),
        (_BLOCK,),
        (
            v_all,
            grad_spikes,
            _flat(g_vpost, batch, neurons),
            _flat(g_i, batch, neurons),
            _flat(g_a, batch, neurons),
            _flat(v0, batch, neurons),
            i0 if need_beta else None,
            _flat(alpha, neurons),
            _flat(beta, neurons),
            _flat(theta, neurons),
            _flat(m, neurons),
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
            int(multi),
            -1 if max_spikes is None else int(max_spikes),
            int(g_vpost is not None),
            int(g_i is not None),
            int(g_a is not None),
            int(need_alpha),
            int(need_beta),
            int(need_theta),
            int(bool(m_is_theta)),
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
