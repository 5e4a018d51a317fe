"""The EventProp adjoint pass of one layer (docs/methods/eventprop.md), batched in torch.

With ``a_V = dL/dV`` and ``a_I = dL/dI`` (sensitivities of the loss to the state just after
time ``t``; W&P's ``lambda`` up to the factors ``tau_m``, ``tau_s``), integrated backwards
from ``a_V(T) = a_I(T) = 0``:

- between events, exactly over a gap ``D``::

      a_V <- a_V exp(-D/tau_m)
      a_I <- a_I exp(-D/tau_s) + a_V(old) K(D),   K(D) = dV(D)/dI(0) (the kernel's V from (0, 1))

- at spike ``k`` of neuron ``n`` (``g_k = dL/dt_k`` from later layers/the loss, ``I_n`` just
  before the spike, ``V_r`` the value after the reset), only ``a_V,n`` jumps::

      a_V,n <- a_V,n - tau_m / (I_n - theta) * ( g_k - a_V,n (theta - V_r)/tau_m
                                                 - sum_m R_mn (a_V,m/tau_m - a_I,m/tau_s) )
      dL/dR_mn += a_I,m

- at an input spike from ``j`` arriving at ``tau``::

      dL/dW_nj += a_I,n,      dL/dtau += sum_n W_nj (a_I,n/tau_s - a_V,n/tau_m)

The last line is the error sent back to the presynaptic spike: it is that spike's ``g_k`` in
the layer below, which is how the layers chain (through autograd, one Function per layer).
Feed-forward layers run one reverse merge of arrivals and own spikes per neuron; recurrent
layers replay the forward's global event sequence backwards.
"""

from __future__ import annotations

import math

import torch

from snnkit_eventprop.simulate import LayerConfig, LayerRecord

__all__ = ["adjoint_layer"]


def _decay(config: LayerConfig, a_v, a_i, gap):
    kernel = config.kernel
    return (
        a_v * torch.exp(-gap / config.tau_mem),
        a_i * torch.exp(-gap / config.tau_syn) + a_v * kernel.voltage(0.0, 1.0, gap),
    )


def adjoint_layer(
    record: LayerRecord,
    grad_times: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    config: LayerConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(dL/d arrival times [B, E], dL/dW [N, N_in], dL/dR or None)`` for ``g = grad_times``."""
    with torch.no_grad():
        g = torch.where(torch.isfinite(record.times), grad_times, torch.zeros_like(grad_times))
        if record.events is None:
            d_arr, d_w = _feedforward(record, g, weight, config)
            return d_arr, d_w, None
        return _global(record, g, weight, recurrent, config)


def _jump(config, a_v_n, current, g, recurrent_term):
    """``lambda_V`` just before a spike from just after it (the spike's jump)."""
    tm, theta = config.tau_mem, config.threshold
    reset = a_v_n * (theta - config.v_after) / tm
    return a_v_n - tm / (current - theta) * (g - reset - recurrent_term)


def _feedforward(record: LayerRecord, g, weight, config: LayerConfig):
    times, currents = record.times, record.currents
    arr_t, sources = record.arrival_times, record.sources
    B, N, K = times.shape
    E = arr_t.shape[1]
    n_in = weight.shape[1]
    tm, ts = config.tau_mem, config.tau_syn
    a_v = times.new_zeros(B, N)
    a_i = times.new_zeros(B, N)
    t = times.new_full((B, N), config.duration)
    pa = (torch.isfinite(arr_t).sum(1) - 1)[:, None].expand(B, N).clone()
    pk = torch.isfinite(times).sum(2) - 1
    neg_inf = times.new_full((B, N), -math.inf)
    b_idx = torch.arange(B, device=times.device)[:, None].expand(B, N)
    n_idx = torch.arange(N, device=times.device)[None, :].expand(B, N)
    d_w = weight.new_zeros(N * n_in)
    d_arr = times.new_zeros(B * E)
    for _ in range(E + K):
        ta = torch.where(pa >= 0, arr_t.gather(1, pa.clamp(min=0)), neg_inf)
        kk = pk.clamp(min=0)[..., None]
        ts_ = torch.where(pk >= 0, times.gather(2, kk)[..., 0], neg_inf)
        spike = (pk >= 0) & (ts_ >= ta)
        arrival = (pa >= 0) & ~spike
        if not bool((spike | arrival).any()):
            break
        t_ev = torch.where(spike, ts_, torch.where(arrival, ta, t))
        a_v, a_i = _decay(config, a_v, a_i, t - t_ev)
        t = t_ev
        if bool(spike.any()):
            cur = currents.gather(2, kk)[..., 0]
            gk = g.gather(2, kk)[..., 0]
            jumped = _jump(config, a_v, cur, gk, torch.zeros_like(a_v))
            a_v = torch.where(spike, jumped, a_v)
        if bool(arrival.any()):
            src = sources.gather(1, pa.clamp(min=0))
            b, n = b_idx[arrival], n_idx[arrival]
            s = src[arrival]
            d_w.index_add_(0, n * n_in + s, a_i[arrival].to(d_w.dtype))
            w = weight[n, s].to(a_v.dtype)
            back = w * (a_i[arrival] / ts - a_v[arrival] / tm)
            d_arr.index_add_(0, b * E + pa[arrival], back)
        pk = pk - spike.long()
        pa = pa - arrival.long()
    return d_arr.view(B, E), d_w.view(N, n_in)


def _global(record: LayerRecord, g, weight, recurrent, config: LayerConfig):
    ev_t, ev_kind, ev_index, ev_slot = record.events
    times, currents = record.times, record.currents
    sources = record.sources
    B, N, K = times.shape
    E = record.arrival_times.shape[1]
    tm, ts = config.tau_mem, config.tau_syn
    w = weight.to(times.dtype)
    r = recurrent.to(times.dtype)
    a_v = times.new_zeros(B, N)
    a_i = times.new_zeros(B, N)
    t = times.new_full((B,), config.duration)
    rows = torch.arange(B, device=times.device)
    d_w_t = times.new_zeros(weight.shape[1], N)  # [N_in, N]
    d_r_t = times.new_zeros(N, N)  # [presynaptic n, postsynaptic m]
    d_arr = times.new_zeros(B, E)
    for step in range(ev_t.shape[1] - 1, -1, -1):
        kind = ev_kind[:, step]
        t_ev = torch.where(kind > 0, ev_t[:, step], t)
        a_v, a_i = _decay(config, a_v, a_i, (t - t_ev)[:, None])
        t = t_ev
        spike, arrival = kind == 2, kind == 1
        if bool(spike.any()):
            b = rows[spike]
            n = ev_index[spike, step]
            k = ev_slot[spike, step]
            back = a_v[b] / tm - a_i[b] / ts  # [S, N] over postsynaptic m
            rec_term = (r[:, n].t() * back).sum(1)
            d_r_t.index_add_(0, n, a_i[b])
            jumped = _jump(config, a_v[b, n], currents[b, n, k], g[b, n, k], rec_term)
            a_v[b, n] = jumped
        if bool(arrival.any()):
            b = rows[arrival]
            e = ev_index[arrival, step]
            src = sources[b, e]
            d_w_t.index_add_(0, src, a_i[b])
            d_arr[b, e] = (w[:, src].t() * (a_i[b] / ts - a_v[b] / tm)).sum(1)
    return d_arr, d_w_t.t().to(weight.dtype), d_r_t.t().to(weight.dtype)
