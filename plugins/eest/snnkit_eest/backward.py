"""EEST backward pass of one layer: the explicit chain rule through the spike times.

For the k-th spike of a neuron (docs/methods/eest.md, in this package's units: ``V = b/z - a/z^2``)::

    dt_k/da_k = tau / (z_k x_k),   dt_k/db_k = -tau / x_k,
    dt_k/dt_j = theta z_j / x_k   (j < k, through the reset terms of b_k)

Measured in the spike's own frame (``z_k = 1``), ``a = I(t_k)``, ``b = theta + I(t_k)``, so
``x_k = I(t_k) - theta`` (``tau dV/dt`` at the crossing) and every factor becomes
``exp((t_i - t_k)/tau) <= 1`` for the causes ``t_i <= t_k``: nothing overflows.

1. One reverse pass per neuron over its own spikes gives the total ``G_k = dL/dt_k``:
   ``G_j = g_j + (theta/tau) R_j``, ``R_j = sum_{k>j} c_k exp((t_j - t_k)/tau)``,
   ``c_k = G_k tau / x_k``.
2. Then through ``a`` and ``b`` to each input arrival ``e`` (weight ``w``, time ``t_e``)::

       dL/dw   += sum_{t_k >= t_e} c_k (exp(2(t_e - t_k)/tau) - exp((t_e - t_k)/tau))
       dL/dt_e += w sum_{t_k >= t_e} c_k (2 exp(2(t_e - t_k)/tau) - exp((t_e - t_k)/tau)) / tau

   evaluated densely as ``[B, E, N, K]`` in chunks of arrivals.
"""

from __future__ import annotations

import math

import torch

from snnkit_eest.forward import LayerConfig, LayerRecord

__all__ = ["backward_layer", "spike_totals"]

_CHUNK = 1 << 22  # elements of one [B, e, N, K] block


def spike_totals(record: LayerRecord, grad: torch.Tensor, config: LayerConfig) -> torch.Tensor:
    """``c_k = G_k tau / x_k`` for every spike ``[B, N, K]`` (0 at padding)."""
    times, tau, theta = record.times, config.tau, config.threshold
    finite = torch.isfinite(times)
    x = torch.where(finite, record.currents - theta, torch.ones_like(times))
    g = torch.where(finite, grad, torch.zeros_like(grad))
    c = torch.zeros_like(times)
    r = torch.zeros_like(times[..., 0])
    K = times.shape[-1]
    for k in range(K - 1, -1, -1):
        if k < K - 1:
            gap = torch.where(finite[..., k + 1], times[..., k] - times[..., k + 1], -math.inf)
            r = (r + c[..., k + 1]) * torch.exp(gap / tau)
        total = g[..., k] + theta / tau * r
        c[..., k] = torch.where(finite[..., k], total * tau / x[..., k], torch.zeros_like(r))
    return c


def backward_layer(
    record: LayerRecord,
    grad: torch.Tensor,
    weight: torch.Tensor,
    config: LayerConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/d arrival times [B, E], dL/dW [N, N_in])`` from ``grad = dL/dt [B, N, K]``."""
    with torch.no_grad():
        tau = config.tau
        dtype = record.times.dtype
        c = spike_totals(record, grad.to(dtype), config)
        t_k = record.times
        B, N, K = t_k.shape
        E = record.arrival_times.shape[1]
        w_t = weight.detach().to(dtype).t()  # [N_in, N]
        d_w = torch.zeros_like(w_t)
        d_arr = record.arrival_times.new_zeros(B, E)
        step = max(1, _CHUNK // max(1, B * N * K))
        for lo in range(0, E, step):
            t_e = record.arrival_times[:, lo : lo + step]
            src = record.sources[:, lo : lo + step]
            d = t_e[:, :, None, None] - t_k[:, None]  # [B, e, N, K]
            cause = (d <= 0) & torch.isfinite(t_e)[:, :, None, None] & torch.isfinite(t_k)[:, None]
            e1 = torch.exp(torch.where(cause, d, torch.full_like(d, -math.inf)) / tau)
            e2 = e1 * e1
            cw = c[:, None]
            dw = (cw * (e2 - e1)).sum(-1)  # [B, e, N]
            dt = (cw * (2.0 * e2 - e1)).sum(-1) / tau
            d_w.index_add_(0, src.reshape(-1), dw.reshape(-1, N))
            d_arr[:, lo : lo + step] = (w_t[src] * dt).sum(-1)
        return d_arr, d_w.t().contiguous()
