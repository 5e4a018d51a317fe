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

which is the first-order recurrence ``g_t = o_t + f_t g_{t+1}`` of docs/methods/exodus.md,
extended by the synaptic stage, the recurrence and the parameter gradients (alpha, beta,
theta, W_rec, initial state).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from snnkit.neurons import LIFCoefficients, LIFState, fire
from snnkit.surrogates import Surrogate


class ScanConfig(NamedTuple):
    """The static choices of an EXODUS layer."""

    surrogate: Surrogate
    max_spikes: int | None
    multi: bool
    m_is_theta: bool  # the reset subtracts the (trainable) threshold, so theta enters there too
    backend: str = "auto"  # see snnkit.kernels.select


class OutputGrads(NamedTuple):
    """Gradients arriving at a layer's outputs: the spikes ``[T, B, N]`` and the final state
    ``[B, N]`` (post-reset membrane, synaptic current, last spikes); None where none arrives."""

    spikes: torch.Tensor | None
    vpost: torch.Tensor | None
    i: torch.Tensor | None
    a: torch.Tensor | None


def forward_scan(current, state: LIFState, c: LIFCoefficients, w_rec, config: ScanConfig):
    """Membrane ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final state (vpost, i, a)
    from the carried ``state`` (``state.v`` is the post-reset membrane).

    Spikes are only needed inside the loop for a recurrence or multi-spike resets; otherwise
    the reset is a ``where`` and all spikes are computed at once afterwards.
    """
    alpha, beta, theta, m = c
    max_spikes, multi = config.max_spikes, config.multi
    steps = current.shape[0]
    v_all = torch.empty_like(current)
    vpost, i, a = state
    per_step_spikes = w_rec is not None or multi
    for t in range(steps):
        x = current[t] if w_rec is None else torch.addmm(current[t], a, w_rec.t())
        i = x if beta is None else torch.addcmul(x, beta, i)
        v = torch.addcmul(i, alpha, vpost, out=v_all[t])
        if per_step_spikes:
            a = fire(v, theta, max_spikes, multi)
            vpost = v - m * a
        else:
            vpost = torch.where(v >= theta, v - m, v)
    a_all = fire(v_all, theta, max_spikes, multi)
    return v_all, a_all, LIFState(vpost, i, a_all[-1])


def reverse_scan(
    v_all, grads: OutputGrads, state: LIFState, c: LIFCoefficients, w_rec, config: ScanConfig, need
):
    """Gradients w.r.t. current, v0, i0, a0, alpha, beta, theta, w_rec (None where not needed).

    Per-neuron parameter gradients come back per sample (``[B, N]``); the caller reduces.
    """
    grad_spikes, g_vpost, g_i, g_a = grads
    v0, i0, a0 = state
    alpha, beta, theta, m = c
    surrogate, max_spikes, multi, m_is_theta, _ = config
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
    # recurrent: the spike adjoint of step t needs lam_x_{t+1} W_rec, so step by step
    a_all = fire(v_all, theta, max_spikes, multi)
    s_all = surrogate(v_all, theta)
    lam_v, lam_a, lam_vpost = (torch.empty_like(v_all) for _ in range(3))
    lam_i = torch.empty_like(v_all) if beta is not None else lam_v  # = lam_x, dL/dc
    lam_vp = g_vpost if g_vpost is not None else torch.zeros_like(v0)
    lam_a_next = g_a if g_a is not None else torch.zeros_like(v0)  # reaching a_t from t+1
    lam_i_carry = g_i  # beta * lam_i_{t+1}, or the final state's gradient
    for t in range(v_all.shape[0] - 1, -1, -1):
        lam_vpost[t] = lam_vp
        torch.sub(grad_spikes[t] + lam_a_next, m * lam_vp, out=lam_a[t])
        torch.addcmul(lam_vp, s_all[t], lam_a[t], out=lam_v[t])
        if beta is not None:
            lam_i[t] = lam_v[t] if lam_i_carry is None else lam_v[t] + lam_i_carry
            lam_i_carry = beta * lam_i[t]
        lam_vp = alpha * lam_v[t]
        lam_a_next = lam_i[t] @ w_rec
    a_prev = torch.cat([a0.unsqueeze(0), a_all[:-1]])
    return {
        "current": lam_i,
        "v0": lam_vp,
        "i0": lam_i_carry,
        "a0": lam_a_next,
        "w_rec": torch.einsum("tbn,tbm->nm", lam_i, a_prev) if need["w_rec"] else None,
        **_parameter_gradients(
            v_all,
            a_all,
            s_all,
            lam_v,
            lam_i,
            lam_a,
            lam_vpost,
            v0,
            i0,
            alpha,
            beta,
            m,
            need,
            m_is_theta,
        ),
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
    (docs/methods/exodus.md); the final-state gradient enters as ``lam_vpost_{T-1}``.
    """
    steps = v_all.shape[0]
    a_all = fire(v_all, theta, max_spikes, multi)
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
    return {
        "current": lam_i,
        "v0": alpha * lam_v[0],
        "i0": beta * lam_i[0] if beta is not None else None,
        "a0": None,
        "w_rec": None,
        **_parameter_gradients(
            v_all,
            a_all,
            s_all,
            lam_v,
            lam_i,
            grad_spikes - m * lam_vpost,
            lam_vpost,
            v0,
            i0,
            alpha,
            beta,
            m,
            need,
            m_is_theta,
        ),
    }


def _parameter_gradients(
    v_all, a_all, s_all, lam_v, lam_i, lam_a, lam_vpost, v0, i0, alpha, beta, m, need, m_is_theta
):
    """dL/dalpha, dL/dbeta, dL/dtheta per sample ``[B, N]`` from the adjoints of every step.

    ``vpost_{t-1}`` and ``i_{t-1} = v_{t-1} - alpha vpost_{t-2}`` are recomputed from ``v``.
    """
    out = {"alpha": None, "beta": None, "theta": None}
    if need["alpha"] or (need["beta"] and beta is not None):
        vpost_prev = torch.cat([v0.unsqueeze(0), (v_all - m * a_all)[:-1]])
        if need["alpha"]:
            out["alpha"] = (lam_v * vpost_prev).sum(0)
        if need["beta"] and beta is not None:
            i_all = v_all - alpha * vpost_prev
            out["beta"] = (lam_i * torch.cat([i0.unsqueeze(0), i_all[:-1]])).sum(0)
    if need["theta"]:
        g_theta = -(s_all * lam_a)
        if m_is_theta:
            g_theta = g_theta - a_all * lam_vpost
        out["theta"] = g_theta.sum(0)
    return out
