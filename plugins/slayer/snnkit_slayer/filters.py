"""Temporal filtering along the time axis of ``[T, B, N]`` tensors, and its adjoint.

``causal_filter``: ``y_t = sum_k kernel[k] x_{t-k}`` (the PSP of an input);
``correlate``:     ``z_t = sum_k kernel[k] g_{t+k}`` (the same filter's adjoint, which
carries a gradient back from later membranes to an earlier input).

``kernel`` is ``[K]`` (shared by all neurons) or ``[N, K]`` (one per neuron). Short
kernels run as a depthwise ``conv1d`` (O(T K)), long ones by FFT (O(T log T)); the switch
is at :data:`FFT_FROM` taps, where the two cost about the same on CPU. Both run in the
input's dtype without fast approximations; they agree to rounding (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FFT_FROM = 64


def _use_fft(kernel: torch.Tensor, method: str) -> bool:
    if method == "auto":
        return kernel.shape[-1] >= FFT_FROM
    return method == "fft"


def _conv(x: torch.Tensor, kernel: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Depthwise conv1d along time; ``reverse`` gives the correlation instead of the filter."""
    steps, batch, neurons = x.shape
    taps = kernel.shape[-1]
    # one kernel per channel (groups = N) is several times faster than one shared kernel
    # over B*N single-channel rows
    weight = kernel.expand(neurons, taps).unsqueeze(1)  # [N, 1, K]
    if not reverse:
        weight = weight.flip(-1)  # conv1d correlates: out_t = sum_k w[k] in_{t+k}
    pad = (0, taps - 1) if reverse else (taps - 1, 0)
    seq = F.pad(x.permute(1, 2, 0), pad)  # [B, N, T + K - 1]
    return F.conv1d(seq, weight, groups=neurons).permute(2, 0, 1)


def _fft(x: torch.Tensor, kernel: torch.Tensor, reverse: bool) -> torch.Tensor:
    steps = x.shape[0]
    taps = kernel.shape[-1]
    size = 1 << (steps + taps - 2).bit_length()  # a power of two >= T + K - 1
    seq = x.permute(1, 2, 0)  # [B, N, T]: transforms along the last axis are faster
    if reverse:
        seq = seq.flip(-1)
    spectrum = torch.fft.rfft(kernel, n=size)  # [F] or [N, F], broadcasts against [B, N, F]
    y = torch.fft.irfft(torch.fft.rfft(seq, n=size) * spectrum, n=size)[..., :steps]
    if reverse:
        y = y.flip(-1)
    return y.permute(2, 0, 1)


def causal_filter(x: torch.Tensor, kernel: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """``y_t = sum_{k=0}^{K-1} kernel[k] x_{t-k}`` over time-first ``x[T, B, N]``."""
    kernel = kernel.to(x.dtype)
    if x.shape[0] == 0:
        return x.clone()
    return (_fft if _use_fft(kernel, method) else _conv)(x, kernel, False).contiguous()


def correlate(g: torch.Tensor, kernel: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """``z_t = sum_{k=0}^{K-1} kernel[k] g_{t+k}``: the adjoint of :func:`causal_filter`."""
    kernel = kernel.to(g.dtype)
    if g.shape[0] == 0:
        return g.clone()
    return (_fft if _use_fft(kernel, method) else _conv)(g, kernel, True).contiguous()


def exponential_kernel(decay: torch.Tensor, taps: int) -> torch.Tensor:
    """``decay[n] ** k`` for k < ``taps``: the LIF PSP kernel, ``[N, taps]``."""
    k = torch.arange(taps, dtype=decay.dtype, device=decay.device)
    return torch.pow(decay.unsqueeze(-1), k)


def powers(decay: torch.Tensor, steps: int) -> torch.Tensor:
    """``decay[n] ** (t + 1)`` for t < ``steps``, ``[T, N]``: how a state decays into step t."""
    k = torch.arange(1, steps + 1, dtype=decay.dtype, device=decay.device)
    return torch.pow(decay.unsqueeze(0), k.unsqueeze(-1))
