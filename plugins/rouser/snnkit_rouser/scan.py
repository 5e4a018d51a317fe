"""Rouser's forward and reverse scans on torch tensors (vectorised over batch x neurons).

Forward, per step (``v_t`` pre-reset membrane, ``u_t`` post-reset, ``m`` reset amount)::

    x_t = c_t + a_{t-1} W_rec^T                 (recurrent layers)
    i_t = beta i_{t-1} + x_t                    (synaptic current; else i_t = x_t)
    v_t = alpha u_{t-1} + i_t                   (u_{-1} = v0, the carried state)
    a_t = spike(v_t - Th)
    u_t = v_t - m a_t   (reset "subtract")   or   u_t = v_t (1 - a_t)   (reset "zero")

Only ``v`` is saved. Backward, with ``s_t = surrogate(v_t, Th)`` (dS/dV = s, dS/dTh = -s)::

    D_t = du_t/dv_t at fixed a_t:  1 (subtract) or 1 - a_t (zero)
    R_t = du_t/da_t:               -m (subtract) or -v_t (zero); 0 with the reset detached
    lam_u_t = alpha lam_v_{t+1}                 (lam_u_{T-1}: the final state's gradient)
    lam_a_t = gS_t + W_rec^T lam_x_{t+1} + R_t lam_u_t
    lam_v_t = s_t lam_a_t + D_t lam_u_t
    lam_i_t = lam_v_t + beta lam_i_{t+1};       dL/dc_t = lam_x_t = lam_i_t (or lam_v_t)
    dL/dTh  = sum_t [-s_t lam_a_t  - a_t lam_u_t (when m is the threshold)]

Feed-forward, this is the linear recurrence ``lam_v_t = s_t gS_t + f_t lam_v_{t+1}``
with ``f_t = alpha (D_t + R_t s_t)``: one fused multiply-add per step, no autograd graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnkit.neurons import fire


@dataclass(frozen=True)
class Dynamics:
    """The static choices of a layer: reset kind, reset gradient, spiking, what m is."""

    reset_zero: bool = False
    through: bool = False  # the spike inside the reset carries its surrogate gradient
    multi: bool = False
    max_spikes: int | None = None
    m_is_theta: bool = True
    backend: str = "auto"  # where the scans run (see snnkit.kernels.select)


def _post_reset(v, a, m, dyn: Dynamics):
    return v * (1 - a) if dyn.reset_zero else v - m * a


def forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, dyn: Dynamics):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final state (u, i, a)."""
    v_all = torch.empty_like(current)
    u, i, a = v0, i0, a0
    per_step_spikes = w_rec is not None or dyn.multi
    for t in range(current.shape[0]):
        x = current[t] if w_rec is None else current[t] + a @ w_rec.t()
        i = x if beta is None else torch.addcmul(x, beta, i)
        v = torch.addcmul(i, alpha, u, out=v_all[t])
        if per_step_spikes:
            a = fire(v, theta, dyn.max_spikes, dyn.multi)
            u = _post_reset(v, a, m, dyn)
        else:  # single spike, no recurrence: the reset is a select
            u = torch.where(v >= theta, torch.zeros_like(v) if dyn.reset_zero else v - m, v)
    a_all = fire(v_all, theta, dyn.max_spikes, dyn.multi)
    return v_all, a_all, (u, i, a_all[-1])


def reverse_scan(
    v_all, g_spikes, g_u, g_i, g_a, v0, i0, a0, alpha, beta, theta, m, w_rec, surrogate, dyn, need
):
    """Gradients w.r.t. current, v0, i0, a0 and w_rec, and per neuron ``[N]`` w.r.t. alpha,
    beta, theta (None where not needed or not applicable); theta's is reduced by the caller.

    ``g_u``, ``g_i``, ``g_a``: gradients of the final state (None when absent).
    ``need``: which of "alpha", "beta", "theta", "w_rec" to compute.
    """
    a_all = fire(v_all, theta, dyn.max_spikes, dyn.multi)
    s_all = surrogate(v_all, theta)
    direct = 1 - a_all if dyn.reset_zero else None  # D_t (None: 1)
    reset = None  # R_t, None when the reset is detached
    if dyn.through:
        reset = -v_all if dyn.reset_zero else -m.expand_as(v_all[0])
    if g_a is not None:  # the carried last spikes are the last output spikes
        g_spikes = torch.cat([g_spikes[:-1], (g_spikes[-1] + g_a)[None]])
    g_u = torch.zeros_like(v0) if g_u is None else g_u
    if w_rec is None:
        lam_v = _membrane_adjoint(v_all, g_spikes, g_u, alpha, s_all, direct, reset)
        lam_u = torch.cat([alpha * lam_v[1:], g_u[None]])
        lam_a = g_spikes if reset is None else g_spikes + reset * lam_u
        lam_i, g_a0 = _current_adjoint(lam_v, g_i, beta), None
    else:
        lam_v, lam_u, lam_a, lam_i, g_a0 = _recurrent(
            g_spikes, g_u, g_i, alpha, beta, w_rec, s_all, direct, reset
        )
    out = {
        "current": lam_i,
        "v0": alpha * lam_v[0],
        "i0": None if beta is None else beta * lam_i[0],
        "a0": g_a0,
        "w_rec": None,
        "alpha": None,
        "beta": None,
        "theta": None,
    }
    if w_rec is not None and need.get("w_rec"):
        a_prev = torch.cat([a0[None], a_all[:-1]])
        out["w_rec"] = torch.einsum("tbn,tbm->nm", lam_i, a_prev)
    if need.get("alpha") or (need.get("beta") and beta is not None):
        u_prev = torch.cat([v0[None], _post_reset(v_all, a_all, m, dyn)[:-1]])
        if need.get("alpha"):
            out["alpha"] = (lam_v * u_prev).sum((0, 1))
        if need.get("beta") and beta is not None:
            i_prev = torch.cat([i0[None], (v_all - alpha * u_prev)[:-1]])
            out["beta"] = (lam_i * i_prev).sum((0, 1))
    if need.get("theta"):
        g_theta = s_all * lam_a
        if dyn.m_is_theta and not dyn.reset_zero:  # theta is also the reset amount
            g_theta = g_theta.addcmul_(a_all, lam_u)
        out["theta"] = -g_theta.sum((0, 1))
    return out


def _membrane_adjoint(v_all, g_spikes, g_u, alpha, s_all, direct, reset):
    """Feed-forward lam_v from the scalar recurrence lam_v_t = s_t gS_t + f_t lam_v_{t+1}."""
    gain = torch.ones_like(v_all) if direct is None else direct  # D_t + R_t s_t
    if reset is not None:
        gain = torch.addcmul(gain, reset, s_all)
    f_all = alpha * gain
    o_all = s_all * g_spikes
    lam_v = torch.empty_like(v_all)
    torch.addcmul(o_all[-1], gain[-1], g_u, out=lam_v[-1])
    for t in range(v_all.shape[0] - 2, -1, -1):
        torch.addcmul(o_all[t], f_all[t], lam_v[t + 1], out=lam_v[t])
    return lam_v


def _current_adjoint(lam_v, g_i, beta):
    """lam_i_t = lam_v_t + beta lam_i_{t+1} (lam_i_T = g_i); lam_v itself without a synapse."""
    if beta is None:
        return lam_v
    lam_i = torch.empty_like(lam_v)
    lam_i[-1] = lam_v[-1] if g_i is None else lam_v[-1] + g_i
    for t in range(lam_v.shape[0] - 2, -1, -1):
        torch.addcmul(lam_v[t], beta, lam_i[t + 1], out=lam_i[t])
    return lam_i


def _recurrent(g_spikes, g_u, g_i, alpha, beta, w_rec, s_all, direct, reset):
    """All adjoints step by step: the spike adjoint of step t needs lam_x_{t+1} W_rec."""
    lam_v, lam_u, lam_a = (torch.empty_like(s_all) for _ in range(3))
    lam_i = torch.empty_like(s_all) if beta is not None else lam_v
    u_adj, a_next, i_carry = g_u, torch.zeros_like(g_u), g_i
    for t in range(s_all.shape[0] - 1, -1, -1):
        lam_u[t] = u_adj
        la = g_spikes[t] + a_next
        if reset is not None:
            la = la + (reset[t] if reset.dim() == 3 else reset) * u_adj
        lam_a[t] = la
        lv = s_all[t] * la + (u_adj if direct is None else direct[t] * u_adj)
        lam_v[t] = lv
        if beta is not None:
            lam_i[t] = lv if i_carry is None else lv + i_carry
            i_carry = beta * lam_i[t]
        u_adj = alpha * lv
        a_next = lam_i[t] @ w_rec
    return lam_v, lam_u, lam_a, lam_i, a_next
