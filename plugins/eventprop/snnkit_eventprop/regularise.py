"""The hidden spike-count regulariser of the loss-shaping EventProp paper (a heuristic).

The paper (Nowotny, Turner & Knight) keeps hidden firing near a target by adding, in the
backward pass, a term to ``lambda_V`` just before every spike of a hidden neuron ``n``,
proportional to how far the neuron's spike count, averaged over the batch, is from a target
``nu`` (their ``REG_TYPE`` "simple", ``lbd_upper``/``nu_upper``). Spike counts have no
gradient (they are piecewise constant in the weights), so this is not the gradient of any
loss: a declared heuristic, off unless ``reg_strength > 0``.

Here, for ``R = (lambda / 2) sum_n (mean_b N_bn - nu)^2`` (``lambda = reg_strength``,
``nu = reg_target``) each spike of neuron ``n`` of sample ``b`` gets
``c_n = dR/dN_bn = lambda (mean_b N_bn - nu) / B`` added to ``a_V = dL/dV`` just before it. A
positive ``c_n`` (too many spikes) makes the weights that drove the neuron up to its spikes
decrease. The spike's jump (:func:`snnkit_eventprop.adjoint._jump`) maps an extra spike-time
gradient ``g'`` to ``-tau_m / (I - theta) g'`` in ``a_V``, so the term enters every backend
(torch, CPU and CUDA kernels; exact and grid mode) as ``g' = -c_n (I_k - theta) / tau_m``
added to the spike times' incoming gradient.
"""

from __future__ import annotations

import torch

__all__ = ["count_regularised"]


def count_regularised(grad, times, currents, config) -> torch.Tensor:
    """``grad`` (dL/d spike times ``[B, N, K]``) with the count regulariser's term added
    where ``config.reg_strength > 0``; ``times``/``currents`` the layer's spikes and the
    current just before each."""
    if not config.reg_strength:
        return grad
    fired = torch.isfinite(times)
    counts = fired.sum(-1).to(currents.dtype)  # [B, N]
    c = config.reg_strength * (counts.mean(0) - config.reg_target) / times.shape[0]  # [N]
    extra = -c[None, :, None] * (currents - config.threshold) / config.tau_mem
    return grad.to(currents.dtype) + torch.where(fired, extra, torch.zeros_like(extra))
