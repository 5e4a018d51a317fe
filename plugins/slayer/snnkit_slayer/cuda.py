"""SLAYER's primitives as CUDA kernels (CuPy), drop-ins for :mod:`.filters` and :mod:`.scan`.

``kernels/slayer.cu``: the PSP filter and its correlation run one thread per (step,
column), all in parallel; spike generation runs one thread per column, sequential in
time. Long kernels (``taps >= FFT_FROM`` with ``method="auto"``, or ``method="fft"``) are
filtered by torch's FFT (cuFFT) instead. No surrogate is compiled in: the backward's only
pointwise step (``s_t gS_t``) is a torch expression. CuPy is imported only when a kernel
is compiled or launched (through :mod:`snnkit.kernels`).
"""

from __future__ import annotations

import functools

import torch

from snnkit import kernels
from snnkit.kernels import broadcast, launch_grid
from snnkit_slayer import filters, scan

_OPTIONS = ("--fmad=false",)  # round like the torch code, operation for operation
FFT_FROM = 128  # taps from which cuFFT beats the direct O(taps) sum per output
CUDA = kernels.cuda_backend()


@functools.cache
def source() -> str:
    return kernels.read_source("snnkit_slayer", "kernels/slayer.cu")


def _use_kernel(x: torch.Tensor, kernel: torch.Tensor, method: str) -> bool:
    if x.dim() != 3 or x.numel() == 0 or method == "fft":
        return False
    return method == "conv" or kernel.shape[-1] < FFT_FROM


def _filter(x, kernel, method, reverse):
    if not _use_kernel(x, kernel, method):
        fn = filters.correlate if reverse else filters.causal_filter
        return fn(x, kernel, "fft" if method == "auto" else method)
    steps, batch, neurons = x.shape
    x = x.contiguous()
    kernel = kernel.to(x.dtype).contiguous()
    y = torch.empty_like(x)
    k = CUDA.kernel(source(), "slayer_filter", x.dtype, _OPTIONS)
    k(
        launch_grid(steps * batch * neurons),
        (kernels.BLOCK,),
        (
            x,
            kernel,
            y,
            steps,
            batch * neurons,
            neurons,
            kernel.shape[-1],
            int(kernel.dim() == 2),
            int(reverse),
        ),
    )
    return y


def causal_filter(x, kernel, method="auto"):
    """``y_t = sum_k kernel[k] x_{t-k}`` (see :func:`filters.causal_filter`)."""
    return _filter(x, kernel, method, False)


def correlate(g, kernel, method="auto"):
    """``z_t = sum_k kernel[k] g_{t+k}`` (see :func:`filters.correlate`)."""
    return _filter(g, kernel, method, True)


def spike_scan_exp(u, alpha, theta, m, max_spikes=None, multi=False):
    """LIF spike generation (see :func:`scan.spike_scan_exp`)."""
    if u.dim() != 3 or u.numel() == 0 or any(p.dim() > 1 for p in (alpha, theta, m)):
        return scan.spike_scan_exp(u, alpha, theta, m, max_spikes, multi)
    steps, batch, neurons = u.shape
    u = u.contiguous()
    v_all, a_all = torch.empty_like(u), torch.empty_like(u)
    vpost = u.new_empty(batch, neurons)
    k = CUDA.kernel(source(), "slayer_spikes_exp", u.dtype, _OPTIONS)
    k(
        launch_grid(batch * neurons),
        (kernels.BLOCK,),
        (
            u,
            broadcast(alpha, neurons),
            broadcast(theta, neurons),
            broadcast(m, neurons),
            v_all,
            a_all,
            vpost,
            steps,
            batch * neurons,
            neurons,
            int(multi),
            -1 if max_spikes is None else int(max_spikes),
        ),
    )
    return v_all, a_all, vpost


def spike_scan_fir(u, nu, theta):
    """Spike generation with a finite refractory kernel (see :func:`scan.spike_scan_fir`)."""
    if u.dim() != 3 or u.numel() == 0 or theta.dim() > 1:
        return scan.spike_scan_fir(u, nu, theta)
    steps, batch, neurons = u.shape
    u = u.contiguous()
    v_all, a_all = torch.empty_like(u), torch.empty_like(u)
    k = CUDA.kernel(source(), "slayer_spikes_fir", u.dtype, _OPTIONS)
    k(
        launch_grid(batch * neurons),
        (kernels.BLOCK,),
        (
            u,
            nu.to(u.dtype).contiguous(),
            broadcast(theta, neurons),
            v_all,
            a_all,
            steps,
            batch * neurons,
            neurons,
            nu.shape[0],
        ),
    )
    return v_all, a_all
