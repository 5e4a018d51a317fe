"""Where SLAYER's primitives run: the CUDA kernels (:mod:`.cuda`) or torch (:mod:`.filters`,
:mod:`.scan`), as :func:`snnkit.kernels.select` decides for ``choice`` (the layer option
``backend``: "auto", "cuda" or "torch"). Each function takes its torch implementation's
arguments plus ``choice``. CuPy is never imported from here.
"""

from __future__ import annotations

import torch

from snnkit import kernels
from snnkit.neurons import fire
from snnkit_slayer import cuda, filters, scan

BACKENDS = ("cuda", "torch")


def _gpu(x: torch.Tensor, choice: str):
    """:mod:`.cuda` when the kernels run this call, else None (torch)."""
    return cuda if kernels.select(x, choice, "slayer", cuda=cuda.CUDA) else None


def causal_filter(x, kernel, method="auto", choice="auto"):
    """``y_t = sum_k kernel[k] x_{t-k}`` (see :func:`filters.causal_filter`)."""
    return (_gpu(x, choice) or filters).causal_filter(x, kernel, method)


def correlate(g, kernel, method="auto", choice="auto"):
    """``z_t = sum_k kernel[k] g_{t+k}`` (see :func:`filters.correlate`)."""
    return (_gpu(g, choice) or filters).correlate(g, kernel, method)


def spike_scan_exp(u, alpha, theta, m, max_spikes=None, multi=False, choice="auto"):
    """LIF spike generation (see :func:`scan.spike_scan_exp`)."""
    return (_gpu(u, choice) or scan).spike_scan_exp(u, alpha, theta, m, max_spikes, multi)


def spike_scan_fir(u, nu, theta, choice="auto"):
    """Spike generation with a finite refractory kernel (see :func:`scan.spike_scan_fir`)."""
    return (_gpu(u, choice) or scan).spike_scan_fir(u, nu, theta)


def spikes(v, theta, max_spikes=None, multi=False):
    """The spikes of a saved membrane (recomputed in the backward pass)."""
    return fire(v, theta, max_spikes, multi)
