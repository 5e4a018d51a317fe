"""SLAYER on LIF kernels: an autograd Function per layer, no per-step graph.

With subtractive reset the LIF neuron is an SRM with exponential kernels::

    i = beta-filter(c) + beta^{t+1} i0           eps_beta[k]  = beta^k     (with tau_syn)
    u = alpha-filter(i) + alpha^{t+1} v0         eps_alpha[k] = alpha^k
    v_t = u_t + r_t,  r_{t+1} = alpha (r_t - m a_t)        nu[k] = -m alpha^k

Forward: two temporal filters (conv1d or FFT), then the spike-generation scan. Backward,
SLAYER's approximation (the refractory path dropped, i.e. the spikes inside the reset
detached), with ``s_t`` the surrogate at the evaluation point and ``gS_t = dL/da_t``::

    lam_u_t = s_t gS_t   (+ dL/dvpost at t = T-1)
    lam_v   = alpha-correlation(lam_u)       lam_i = beta-correlation(lam_v (+ dL/di at T-1))
    dL/dc = lam_i (or lam_v)   dL/dv0 = alpha lam_v_0   dL/di0 = beta lam_i_0
    dL/dalpha = sum_t lam_v_t vpost_{t-1}    dL/dbeta = sum_t lam_i_t i_{t-1}
    dL/dtheta = -sum_t s_t gS_t  (- sum_t a_t lam_vpost_t when the reset amount is theta)

which equals BPTT with the reset gradient detached (docs/methods/slayer.md).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from snnkit.surrogates import Surrogate
from snnkit_slayer import backend
from snnkit_slayer.filters import exponential_kernel, powers


def psp_taps(decay: torch.Tensor, steps: int) -> int:
    """Taps of an exponential kernel: all ``steps``, unless ``decay^k`` falls below rounding."""
    top = float(decay.detach().max())
    if top >= 1.0 or top <= 0.0:
        return max(steps, 1) if top >= 1.0 else 1
    tiny = torch.finfo(decay.dtype).eps * 1e-3
    return max(1, min(steps, math.ceil(math.log(tiny) / math.log(top)) + 1))


class LIFConfig(NamedTuple):
    """The static choices of a SLAYER LIF layer."""

    surrogate: Surrogate
    max_spikes: int | None
    multi: bool
    post_reset: bool  # the surrogate is evaluated at the post-reset membrane
    filter: str  # temporal filtering: "auto", "conv" or "fft"
    backend: str = "auto"  # where the primitives run (see snnkit.kernels.select)


def _exp_filter(x, decay, init, config: LIFConfig):
    """``y_t = decay y_{t-1} + x_t`` from ``y_{-1} = init``, as a filter (not a loop)."""
    steps = x.shape[0]
    kernel = exponential_kernel(decay, psp_taps(decay, steps))
    y = backend.causal_filter(x, kernel, config.filter, config.backend)
    return y.addcmul_(powers(decay, steps).unsqueeze(1), init)


def _exp_correlate(g, decay, config: LIFConfig):
    kernel = exponential_kernel(decay, psp_taps(decay, g.shape[0]))
    return backend.correlate(g, kernel, config.filter, config.backend)


class SlayerLIFFunction(torch.autograd.Function):
    """Whole-sequence LIF layer under SLAYER: filters forward, correlations backward.

    ``m`` is None when the reset amount is the threshold (then theta's gradient includes
    the reset's); ``config`` is a :class:`LIFConfig`.
    """

    @staticmethod
    def forward(ctx, current, v0, i0, alpha, beta, theta, m, config: LIFConfig):
        m_value = theta if m is None else m
        with torch.no_grad():
            i = current if beta is None else _exp_filter(current, beta, i0, config)
            u = _exp_filter(i, alpha, v0, config)
            v_all, a_all, vpost = backend.spike_scan_exp(
                u, alpha, theta, m_value, config.max_spikes, config.multi, config.backend
            )
        ctx.config = config
        ctx.save_for_backward(v_all, v0, i0, alpha, beta, theta, m)
        i_last = i[-1].clone() if beta is not None else current.new_zeros(0)
        return a_all, vpost, i_last, a_all[-1].clone()

    @staticmethod
    def backward(ctx, g_spikes, g_vpost, g_i, g_a):
        v_all, v0, i0, alpha, beta, theta, m = ctx.saved_tensors
        config = ctx.config
        surrogate, max_spikes, multi, post_reset = config[:4]
        m_is_theta = m is None
        m_value = theta if m_is_theta else m
        need_alpha, need_beta, need_theta = (ctx.needs_input_grad[k] for k in (3, 4, 5))
        with torch.no_grad():
            a_all = backend.spikes(v_all, theta, max_spikes, multi)
            g_spikes = g_spikes.clone()
            g_spikes[-1] += g_a
            v_eval = v_all - m_value * a_all if post_reset else v_all
            s_gs = surrogate(v_eval, theta).mul_(g_spikes)
            lam_u = s_gs.clone()
            lam_u[-1] += g_vpost
            lam_v = _exp_correlate(lam_u, alpha, config)
            if beta is not None:
                lam_v_in = lam_v.clone()
                lam_v_in[-1] += g_i
                lam_i = _exp_correlate(lam_v_in, beta, config)
            else:
                lam_i = lam_v
            g = {"alpha": None, "beta": None, "theta": None}
            if need_alpha or need_beta:
                vpost_prev = torch.cat([v0.unsqueeze(0), (v_all - m_value * a_all)[:-1]])
                if need_alpha:
                    g["alpha"] = (lam_v * vpost_prev).sum((0, 1))
                if need_beta:
                    i_all = v_all - alpha * vpost_prev
                    i_prev = torch.cat([i0.unsqueeze(0), i_all[:-1]])
                    g["beta"] = (lam_i * i_prev).sum((0, 1))
            if need_theta:
                g_theta = -s_gs.sum((0, 1))
                if m_is_theta:
                    lam_vpost = torch.cat([alpha * lam_v[1:], g_vpost.unsqueeze(0)])
                    g_theta -= (a_all * lam_vpost).sum((0, 1))
                g["theta"] = g_theta
        return (
            lam_i,
            alpha * lam_v[0],
            beta * lam_i[0] if beta is not None else None,
            g["alpha"],
            g["beta"],
            g["theta"],
            None,
            None,
        )
