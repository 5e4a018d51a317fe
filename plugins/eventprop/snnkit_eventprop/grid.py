"""Time-stepped EventProp (``mode="grid"``): forward and adjoint on a grid of step ``dt``.

For long inputs (e.g. SHD at ``dt = 1`` ms) where event-by-event simulation is slow: the
work per step is fixed, whatever the number of events. It is **not exact**: threshold
crossings are only looked for at grid points, and the crossing time is interpolated, so
its gradient converges to the event-exact one as ``dt -> 0`` (tested). Per step ``k``
(``t_k = k dt``):

- forward: the state advances exactly over ``dt``; every spike in ``(t_{k-1}, t_k]`` is
  injected exactly at ``t_k`` (an input at ``tau`` adds ``w exp(-(t_k - tau)/tau_s)`` to ``I``
  and ``w K(t_k - tau)`` to ``V``, ``K`` the kernel's response to a unit current jump). A
  neuron with ``V(t_k) >= theta`` spikes once, at the linearly interpolated time
  ``t* = t_{k-1} + dt (theta - V_{k-1}) / (V_k - V_{k-1})``; it is reset as if at ``t*``
  (``V(t_k) = V_r exp(-(t_k - t*)/tau_m) + I(t*) K(t_k - t*)``) and its recurrent jumps are
  injected like inputs;
- adjoint, backwards per step: the injections' gradients at ``t_k`` (weights, input and
  recurrent spike times), then for each spiking neuron the exact adjoint decay to ``t*``,
  the spike jump of :mod:`snnkit_eventprop.adjoint` (with ``I(t*)``), and the decay on to
  ``t_{k-1}``.

This torch code is the readable reference (``backend="torch"``); by default
:func:`grid_spike_times` runs the same steps as compiled kernels
(:mod:`snnkit_eventprop.grid_kernels`), chosen by :func:`snnkit.kernels.select`.
"""

from __future__ import annotations

import math

import torch

from snnkit_eventprop.adjoint import _decay, _jump
from snnkit_eventprop.regularise import count_regularised
from snnkit_eventprop.simulate import LayerConfig, SpikeBuffer, arrivals
from snnkit_eventprop.solver import first_crossing

__all__ = ["grid_spike_times"]


def _bins(times: torch.Tensor, dt: float) -> torch.Tensor:
    """Step at which each (finite) arrival is injected: ``ceil(t/dt)``, robust to ``k*dt``."""
    finite = torch.isfinite(times)
    q = torch.where(finite, times, torch.zeros_like(times)).to(torch.float64) / dt
    return torch.ceil(q - 1e-9).clamp(min=0).long()


def schedule(times: torch.Tensor, config: LayerConfig, dt: float):
    """``(steps, bins, grid)`` for sorted arrival times ``[B, E]``: the number of steps, each
    arrival's injection step ``[B, E]`` (``steps + 1`` for padding) and the grid times
    ``t_k = k dt`` ``[steps + 1]`` (computed in float64, then in the arrivals' dtype).
    Arrivals after the duration get a step past ``steps``: they are never injected."""
    steps = max(1, math.ceil(config.duration / dt - 1e-9))
    bins = torch.where(torch.isfinite(times), _bins(times, dt), steps + 1)
    grid = torch.arange(steps + 1, dtype=torch.float64, device=times.device) * dt
    return steps, bins, grid.to(times.dtype)


def _response(config: LayerConfig, gap: torch.Tensor):
    """``(exp(-gap/tau_s), K(gap), K'(gap))`` for a unit current jump ``gap`` ms ago."""
    kernel = config.kernel
    e_s = torch.exp(-gap / config.tau_syn)
    k = kernel.voltage(0.0, 1.0, gap)
    return e_s, k, (e_s - k) / config.tau_mem


def _in_step(bins, times, sources, k):
    """Arrivals injected at step ``k``, per sample: times, sources, slots, validity ``[B, M]``."""
    start = torch.searchsorted(bins, torch.full_like(bins[:, :1], k))
    stop = torch.searchsorted(bins, torch.full_like(bins[:, :1], k + 1))
    M = int((stop - start).max()) if bins.numel() else 0
    slot = start + torch.arange(M, device=bins.device)[None, :]
    valid = slot < stop
    slot = slot.clamp(max=max(bins.shape[1] - 1, 0))
    return times.gather(1, slot), sources.gather(1, slot), slot, valid


def _crossing(config, v_prev, i_prev, v, fire, dt):
    """Offset of the crossing inside the step: solved from the state at the step's start,
    linear interpolation where the step's own inputs made it (no crossing without them)."""
    b, n = fire.nonzero(as_tuple=True)
    s = first_crossing(
        config.kernel, v_prev[b, n], i_prev[b, n], config.threshold, v.new_full(b.shape, dt)
    )
    theta = config.threshold
    linear = (theta - v_prev[b, n]) / (v[b, n] - v_prev[b, n]) * dt
    out = torch.zeros_like(v)
    out[b, n] = torch.where(torch.isfinite(s), s, linear).clamp(0.0, dt)
    return out


def _before(t_star, tau, valid):
    """``[B, N, M]``: arrival ``m`` of the step came before neuron ``n``'s spike at ``t*``."""
    return valid[:, None, :] & (tau[:, None, :] < t_star[:, :, None])


def _arrival_grads(config, ai_all, av_all, w, bins, sources, gap, finite, chunk=1 << 16):
    """``[B, E]``: each arrival's time gradient through its injection at its step,
    ``(a_I . w) e_s / tau_s - (a_V . w) K'``, computed in chunks of arrivals."""
    e_s, _, k_dv = _response(config, gap)
    steps = ai_all.shape[0] - 1
    out = torch.zeros_like(gap)
    b, e = finite.nonzero(as_tuple=True)
    k, src = bins[b, e].clamp(max=steps), sources[b, e]
    w_t = w.t()
    for lo in range(0, len(b), chunk):
        part = slice(lo, lo + chunk)
        bb, ee, kk, jumps = b[part], e[part], k[part], w_t[src[part]]
        ai = (ai_all[kk, bb] * jumps).sum(-1)
        av = (av_all[kk, bb] * jumps).sum(-1)
        out[bb, ee] = ai * e_s[bb, ee] / config.tau_syn - av * k_dv[bb, ee]
    return out


class _GridLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, weight, recurrent, config: LayerConfig, dt: float):
        with torch.no_grad():
            times, sources, order = arrivals(pre)
            B, E = times.shape
            N, n_in = weight.shape
            steps, bins, grid = schedule(times, config, dt)
            finite = bins <= steps  # arrivals after the duration change nothing before it
            gap = torch.where(finite, grid[bins.clamp(max=steps)] - times, torch.zeros_like(times))
            e_s, k_v, _ = _response(config, gap)
            # the injections as sparse [steps + 1, B] x n_in matrices: only the arrivals are
            # stored, and the input currents of every step are two sparse products
            b_idx = torch.arange(B, device=pre.device)[:, None].expand(B, E)
            rows = bins[finite] * B + b_idx[finite]
            where = torch.stack([rows, sources[finite]])
            size = ((steps + 1) * B, n_in)
            xi = torch.sparse_coo_tensor(
                where, e_s[finite], size, check_invariants=False
            ).coalesce()  # exp(-gap/tau_s)
            xv = torch.sparse_coo_tensor(
                where, k_v[finite], size, check_invariants=False
            ).coalesce()  # K(gap)
            ctx.arrivals = (times, sources)
            w = weight.detach().to(pre.dtype)
            r = None if recurrent is None else recurrent.detach().to(pre.dtype)
            kernel, theta, v_r = config.kernel, config.threshold, config.v_after
            buf = SpikeBuffer(pre, N, config)
            fired_at = []  # (fire mask, slots, t*, step) of steps with spikes
            in_i = torch.sparse.mm(xi, w.t()).view(steps + 1, B, N)
            in_v = torch.sparse.mm(xv, w.t()).view(steps + 1, B, N)
            v, i = in_v[0], in_i[0]
            for k in range(1, steps + 1):
                v_prev, i_prev = v, i
                v, i = kernel.advance(v, i, torch.full_like(v, dt))
                fire = v >= theta
                if bool(fire.any()):
                    t_star = _crossing(config, v_prev, i_prev, v, fire, dt) + (k - 1) * dt
                    fire = fire & (t_star < config.duration)
                    late = torch.where(fire, k * dt - t_star, torch.zeros_like(t_star))
                    r_s, r_v, _ = _response(config, late)
                    i_star = i / r_s
                    tau, src, _, valid = _in_step(bins, times, sources, k)
                    if tau.shape[1]:  # arrivals of this step that came before t*
                        before = _before(t_star, tau, valid)
                        decay = torch.exp(-(t_star[:, :, None] - tau[:, None, :]) / config.tau_syn)
                        jumps = w.t()[src].transpose(1, 2)  # [B, N, M]
                        i_star = i_star + torch.where(before, decay * jumps, 0.0).sum(
                            -1
                        )  # padding: inf
                    slots = buf.add(fire, t_star, i_star)
                    fired_at.append((fire, slots, t_star, k))
                    v = torch.where(fire, v_r * torch.exp(-late / config.tau_mem) + i_star * r_v, v)
                    if r is not None:
                        f = fire.to(v.dtype)
                        i = i + (f * r_s) @ r.t()
                        v = v + (f * r_v) @ r.t()
                i = i + in_i[k]
                v = v + in_v[k]
            del in_i, in_v
            spikes, currents = buf.trimmed()
            spike_step = torch.full(spikes.shape, -1, dtype=torch.long, device=pre.device)
            for fire, slots, _, k in fired_at:
                b, n = fire.nonzero(as_tuple=True)
                spike_step[b, n, slots[b, n]] = k
        ctx.save_for_backward(weight, recurrent)
        ctx.data = (xi, xv, spikes, currents, spike_step, bins, gap, sources, order, finite)
        ctx.config, ctx.dt, ctx.steps, ctx.pre_shape = config, dt, steps, pre.shape
        return spikes.to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        weight, recurrent = ctx.saved_tensors
        xi, xv, spikes, currents, spike_step, bins, gap, sources, order, finite = ctx.data
        config, dt = ctx.config, ctx.dt
        tm, ts = config.tau_mem, config.tau_syn
        with torch.no_grad():
            dtype = xi.dtype
            w = weight.to(dtype)
            r = None if recurrent is None else recurrent.to(dtype)
            grad = count_regularised(grad.to(dtype), spikes, currents, config)
            g = torch.where(torch.isfinite(spikes), grad.to(dtype), torch.zeros_like(spikes))
            B, N = spikes.shape[:2]
            a_v = spikes.new_zeros(B, N, dtype=dtype)
            a_i = spikes.new_zeros(B, N, dtype=dtype)
            d_w = torch.zeros_like(w)
            d_r = None if r is None else torch.zeros_like(r)
            ai_all = a_i.new_zeros(ctx.steps + 1, B, N)  # a_I at each step
            av_all = a_v.new_zeros(ctx.steps + 1, B, N)  # a_V
            step = torch.full_like(a_v, dt)
            times, sources = ctx.arrivals
            d_fix = spikes.new_zeros(bins.shape, dtype=dtype)
            for k in range(ctx.steps, -1, -1):
                ai_all[k], av_all[k] = a_i, a_v
                if k == 0:
                    break
                hit = spike_step == k
                fired = hit.any(-1)
                if not bool(fired.any()):
                    a_v, a_i = _decay(config, a_v, a_i, step)
                    continue
                slot = hit.to(torch.long).argmax(-1, keepdim=True)
                t_star = spikes.gather(2, slot)[..., 0]
                late = torch.where(fired, k * dt - t_star, torch.zeros_like(a_v))
                r_s, r_v, r_dv = _response(config, late)
                gk = g.gather(2, slot)[..., 0]
                if r is not None:  # recurrent injections: weights and the spike times
                    f = fired.to(dtype)
                    d_r += a_i.t() @ (f * r_s) + a_v.t() @ (f * r_v)
                    gk = gk + (a_i @ r) * r_s / ts - (a_v @ r) * r_dv
                a_v, a_i = _decay(config, a_v, a_i, late)
                cur = currents.gather(2, slot)[..., 0]
                zero = torch.zeros_like(a_v)
                jumped = torch.where(fired, _jump(config, a_v, cur, gk, zero), a_v)
                delta, a_v = jumped - a_v, jumped
                tau, src, slots, valid = _in_step(bins, times, sources, k)
                if tau.shape[1]:  # arrivals before t* in this step see the jump
                    before = _before(t_star, tau, valid) & fired[:, :, None]
                    lag = (t_star[:, :, None] - tau[:, None, :]).clamp(min=0)
                    k_lag = config.kernel.voltage(0.0, 1.0, lag)
                    d_ai = torch.where(before, delta[:, :, None] * k_lag, 0.0)  # [B, N, M]
                    d_w.index_put_(
                        (
                            torch.arange(N, device=w.device)[None, :, None].expand_as(d_ai),
                            src[:, None, :].expand_as(d_ai),
                        ),
                        d_ai,
                        accumulate=True,
                    )
                    if ctx.needs_input_grad[0]:  # the arrivals' time gradients see it too
                        d_av = torch.where(before, delta[:, :, None] * torch.exp(-lag / tm), 0.0)
                        jumps = w.t()[src].transpose(1, 2)
                        fix = (jumps * (d_ai / ts - d_av / tm)).sum(1)  # [B, M]
                        d_fix.scatter_add_(1, slots, torch.where(valid, fix, 0.0))
                a_v, a_i = _decay(config, a_v, a_i, step - late)
            # the injections' weight gradient, sum_k a(t_k)^T x_k, as two sparse products
            d_w += torch.sparse.mm(xi.t(), ai_all.view(-1, N)).t()
            d_w += torch.sparse.mm(xv.t(), av_all.view(-1, N)).t()
            d_pre = None
            if ctx.needs_input_grad[0]:
                d_arr = _arrival_grads(config, ai_all, av_all, w, bins, sources, gap, finite)
                d_arr = d_arr + d_fix
                d_pre = d_arr.new_zeros(bins.shape).scatter_(1, order, d_arr).view(ctx.pre_shape)
        d_r = None if d_r is None else d_r.to(weight.dtype)
        return d_pre, d_w.to(weight.dtype), d_r, None, None


def grid_spike_times(
    pre, weight, recurrent, config: LayerConfig, dt: float, **options
) -> torch.Tensor:
    """Spike times ``[B, N, K]`` of one layer simulated on a grid of step ``dt`` (differentiable).

    Runs the compiled kernels (:mod:`snnkit_eventprop.grid_kernels`) where
    :func:`snnkit.kernels.select` picks them for ``options["backend"]`` (default ``"auto"``),
    else this module's torch code (``backend="torch"``: the readable reference)."""
    from snnkit_eventprop import function, grid_kernels  # grid_kernels imports this module

    backend = function._backend(pre, options)
    if backend is not None:
        return grid_kernels.grid_layer(pre, weight, recurrent, config, dt, backend)
    return _GridLayer.apply(pre, weight, recurrent, config, float(dt))
