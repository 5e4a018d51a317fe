"""Where SLAYER's primitives run: CuPy kernels for CUDA tensors when CuPy is present, else torch.

Every function here has the signature of its torch implementation (:mod:`.filters`,
:mod:`.scan`); :mod:`.cuda` provides drop-ins. CuPy is never imported from here.
"""

from __future__ import annotations

import torch

from snnkit.neurons import fire
from snnkit_slayer import filters, scan


def _module(x: torch.Tensor):
    if x.is_cuda:
        from snnkit_slayer import cuda

        if cuda.available():
            return cuda
    return None


def causal_filter(x, kernel, method="auto"):
    """``y_t = sum_k kernel[k] x_{t-k}`` (see :func:`filters.causal_filter`)."""
    gpu = _module(x)
    return (gpu or filters).causal_filter(x, kernel, method)


def correlate(g, kernel, method="auto"):
    """``z_t = sum_k kernel[k] g_{t+k}`` (see :func:`filters.correlate`)."""
    gpu = _module(g)
    return (gpu or filters).correlate(g, kernel, method)


def spike_scan_exp(u, alpha, theta, m, max_spikes=None, multi=False):
    """LIF spike generation (see :func:`scan.spike_scan_exp`)."""
    gpu = _module(u)
    return (gpu or scan).spike_scan_exp(u, alpha, theta, m, max_spikes, multi)


def spike_scan_fir(u, nu, theta):
    """Spike generation with a finite refractory kernel (see :func:`scan.spike_scan_fir`)."""
    gpu = _module(u)
    return (gpu or scan).spike_scan_fir(u, nu, theta)


def spikes(v, theta, max_spikes=None, multi=False):
    """The spikes of a saved membrane (recomputed in the backward pass)."""
    return fire(v, theta, max_spikes, multi)
