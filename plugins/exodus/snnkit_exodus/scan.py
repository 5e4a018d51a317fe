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
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final (vpost, i, a)."""
    steps = current.shape[0]
    v_all = torch.empty_like(current)
    a_all = torch.empty_like(current)
    vpost, i, a = v0, i0, a0
    for t in range(steps):
        x = current[t] if w_rec is None else torch.addmm(current[t], a, w_rec.t())
        i = x if beta is None else torch.addcmul(x, beta, i)
        v = torch.addcmul(i, alpha, vpost)
        a = heaviside_spikes(v, theta, max_spikes, multi)
        v_all[t] = v
        a_all[t] = a
        vpost = v - m * a
    return v_all, a_all, (vpost, i, a)


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


def _current_before(t, v_all, a_all, v0, i0, alpha, m):
    """i_{t-1}, recomputed from the saved membranes: i_{t-1} = v_{t-1} - alpha vpost_{t-2}."""
    if t == 0:
        return i0
    vpost_before = (v_all[t - 2] - m * a_all[t - 2]) if t > 1 else v0
    return v_all[t - 1] - alpha * vpost_before
