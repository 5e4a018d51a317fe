"""The EXODUS forward and reverse scans on CPU tensors (vectorised over batch x neurons).

Forward, per step (``v_t`` pre-reset membrane, ``m`` the reset amount)::

    x_t = c_t + a_{t-1} W_rec^T                 (recurrent layers)
    i_t = beta i_{t-1} + x_t                    (synaptic current; else i_t = x_t)
    v_t = alpha (v_{t-1} - m a_{t-1}) + i_t     (the state carries vpost_{-1} = v0)
    a_t = spike(v_t)

Only ``v`` is saved; spikes, post-reset membranes and currents are recomputed from it.
Reverse scan (``s_t`` = surrogate at ``v_t``, ``gS``/``gV`` incoming gradients)::

    lam_a_t = gS_t + W_rec^T lam_x_{t+1} - m lam_vp_t      lam_vp_t = alpha lam_v_{t+1}
    lam_v_t = lam_vp_t + s_t lam_a_t
            = alpha (1 - m s_t) lam_v_{t+1} + s_t (gS_t + W_rec^T lam_x_{t+1})
    lam_i_t = lam_v_t + beta lam_i_{t+1};   dL/dc_t = lam_x_t = lam_i_t (or lam_v_t)

which is METHODS.md §2's ``g_t = o_t + f_t g_{t+1}``, extended by the synaptic stage,
the recurrence and the parameter gradients (alpha, beta, theta, W_rec, initial state).
"""

from __future__ import annotations

import torch

from snnkit.reference.bptt import heaviside_spikes


def forward_scan(current, v0, i0, a0, alpha, beta, theta, m, w_rec, max_spikes, multi):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final (vpost, i, a).

    Spikes are only needed inside the loop for a recurrence or multi-spike resets; otherwise
    the reset is a ``where`` and all spikes are computed at once afterwards.
    """
    steps = current.shape[0]
    v_all = torch.empty_like(current)
    vpost, i, a = v0, i0, a0
    per_step_spikes = w_rec is not None or multi
    for t in range(steps):
        x = current[t] if w_rec is None else torch.addmm(current[t], a, w_rec.t())
        i = x if beta is None else torch.addcmul(x, beta, i)
        v = torch.addcmul(i, alpha, vpost, out=v_all[t])
        if per_step_spikes:
            a = heaviside_spikes(v, theta, max_spikes, multi)
            vpost = v - m * a
        else:
            vpost = torch.where(v >= theta, v - m, v)
    a_all = heaviside_spikes(v_all, theta, max_spikes, multi)
    return v_all, a_all, (vpost, i, a_all[-1])


def reverse_scan(
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
):
    """Gradients w.r.t. current, v0, i0, a0, alpha, beta, theta, w_rec (None where not needed).

    Per-neuron parameter gradients come back per sample (``[B, N]``); the caller reduces.
    ``m_is_theta``: the reset subtracts the (trainable) threshold, so theta also enters there.
    """
    if w_rec is None:
        if g_a is not None:  # the carried last spikes are the last output spikes
            grad_spikes = grad_spikes.clone()
            grad_spikes[-1] += g_a
        return _reverse_scan_feedforward(
            v_all,
            grad_spikes,
            g_vpost,
            g_i,
            v0,
            i0,
            alpha,
            beta,
            theta,
            m,
            surrogate,
            max_spikes,
            multi,
            need,
            m_is_theta,
        )
    steps = v_all.shape[0]
    a_all = heaviside_spikes(v_all, theta, max_spikes, multi)
    s_all = surrogate(v_all, theta)
    g_current = torch.empty_like(v_all)
    lam_vp = g_vpost if g_vpost is not None else torch.zeros_like(v0)  # dL/dvpost_t
    lam_a_extra = g_a if g_a is not None else torch.zeros_like(v0)  # reaching a_t from step t+1
    g_alpha = torch.zeros_like(v0) if need["alpha"] else None
    g_beta = torch.zeros_like(v0) if need["beta"] and beta is not None else None
    g_theta = torch.zeros_like(v0) if need["theta"] else None
    g_wrec = torch.zeros_like(w_rec) if w_rec is not None and need["w_rec"] else None
    lam_i_carry = g_i  # dL/di_t arriving from i_{t+1} (already times beta) or the final state
    for t in range(steps - 1, -1, -1):
        s, a = s_all[t], a_all[t]
        lam_a = grad_spikes[t] + lam_a_extra - m * lam_vp
        lam_v = lam_vp + s * lam_a
        if beta is not None:
            lam_i = lam_v if lam_i_carry is None else lam_v + lam_i_carry
            lam_x = lam_i
        else:
            lam_i = lam_v
            lam_x = lam_v
        g_current[t] = lam_x
        vpost_prev = (v_all[t - 1] - m * a_all[t - 1]) if t > 0 else v0
        if g_alpha is not None:
            g_alpha += lam_v * vpost_prev
        if g_theta is not None:
            g_theta -= s * lam_a
            if m_is_theta:
                g_theta -= a * lam_vp
        if g_beta is not None:
            i_prev = _current_before(t, v_all, a_all, v0, i0, alpha, m)
            g_beta += lam_i * i_prev
        a_prev = a_all[t - 1] if t > 0 else a0
        if g_wrec is not None:
            g_wrec += lam_x.t() @ a_prev
        # hand the adjoints to step t-1
        lam_vp = alpha * lam_v
        lam_i_carry = beta * lam_i if beta is not None else None
        lam_a_extra = lam_x @ w_rec if w_rec is not None else torch.zeros_like(v0)
    return {
        "current": g_current,
        "v0": lam_vp,
        "i0": lam_i_carry,
        "a0": lam_a_extra if w_rec is not None else None,
        "alpha": g_alpha,
        "beta": g_beta,
        "theta": g_theta,
        "w_rec": g_wrec,
    }


def _reverse_scan_feedforward(
    v_all,
    grad_spikes,
    g_vpost,
    g_i,
    v0,
    i0,
    alpha,
    beta,
    theta,
    m,
    surrogate,
    max_spikes,
    multi,
    need,
    m_is_theta,
):
    """The same gradients without recurrence: one fused op per step, the rest vectorised.

    ``lam_v_t = o_t + f_t lam_v_{t+1}`` with ``f_t = alpha (1 - m s_t)`` and ``o_t = s_t gS_t``
    (METHODS.md §2); the final-state gradient enters as ``lam_vpost_{T-1}``.
    """
    steps = v_all.shape[0]
    a_all = heaviside_spikes(v_all, theta, max_spikes, multi)
    s_all = surrogate(v_all, theta)
    one_minus = 1.0 - m * s_all
    f_all = alpha * one_minus  # d v_{t+1} / d v_t, through decay and reset
    lam_v = torch.empty_like(v_all)
    # t = T-1: lam_vpost = g_vpost, so lam_v = s gS + (1 - m s) g_vpost
    last = s_all[-1] * grad_spikes[-1]
    if g_vpost is not None:
        last = torch.addcmul(last, one_minus[-1], g_vpost)
    lam_v[-1] = last
    o_all = s_all * grad_spikes
    for t in range(steps - 2, -1, -1):
        torch.addcmul(o_all[t], f_all[t], lam_v[t + 1], out=lam_v[t])
    if beta is not None:
        lam_i = torch.empty_like(v_all)
        lam_i[-1] = lam_v[-1] if g_i is None else lam_v[-1] + g_i
        for t in range(steps - 2, -1, -1):
            torch.addcmul(lam_v[t], beta, lam_i[t + 1], out=lam_i[t])
    else:
        lam_i = lam_v
    # lam_vpost_t = alpha lam_v_{t+1} (t < T-1), g_vpost at T-1; lam_a_t = gS_t - m lam_vpost_t
    lam_vpost = torch.empty_like(v_all)
    lam_vpost[:-1] = alpha * lam_v[1:]
    lam_vpost[-1] = 0.0 if g_vpost is None else g_vpost
    vpost = v_all - m * a_all
    vpost_prev = torch.cat([v0.unsqueeze(0), vpost[:-1]])
    out = {
        "current": lam_i,
        "v0": alpha * lam_v[0],
        "i0": beta * lam_i[0] if beta is not None else None,
        "a0": None,
        "alpha": (lam_v * vpost_prev).sum(0) if need["alpha"] else None,
        "beta": None,
        "theta": None,
        "w_rec": None,
    }
    if need["beta"] and beta is not None:
        i_all = v_all - alpha * vpost_prev
        i_prev = torch.cat([i0.unsqueeze(0), i_all[:-1]])
        out["beta"] = (lam_i * i_prev).sum(0)
    if need["theta"]:
        lam_a = grad_spikes - m * lam_vpost
        g_theta = -(s_all * lam_a)
        if m_is_theta:
            g_theta = g_theta - a_all * lam_vpost
        out["theta"] = g_theta.sum(0)
    return out


def _current_before(t, v_all, a_all, v0, i0, alpha, m):
    """i_{t-1}, recomputed from the saved membranes: i_{t-1} = v_{t-1} - alpha vpost_{t-2}."""
    if t == 0:
        return i0
    vpost_before = (v_all[t - 2] - m * a_all[t - 2]) if t > 1 else v0
    return v_all[t - 1] - alpha * vpost_before
