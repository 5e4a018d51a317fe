"""Spike generation with refractory response on CPU tensors (vectorised over batch x neurons).

The membrane's input part ``u[T, B, N]`` (the PSP, computed beforehand by filtering) is
given; what is left is sequential in time, because a spike changes the membrane after it::

    v_t = u_t + r_t                  (pre-reset membrane, what the surrogate sees)
    a_t = spike(v_t)

with the refractory response ``r`` of the earlier spikes either exponential (the LIF
kernel ``nu[k] = -m alpha^k``: ``r_{t+1} = alpha (r_t - m a_t)``, O(1) state) or a finite
kernel ``nu[K]`` added to the next ``K - 1`` steps of ``u`` after each spike.
"""

from __future__ import annotations

import torch

from snnkit.neurons import fire


def spike_scan_exp(u, alpha, theta, m, max_spikes=None, multi=False):
    """LIF refractory. Returns ``v[T, B, N]``, spikes ``a[T, B, N]`` and the final ``vpost``."""
    v_all = torch.empty_like(u)
    r = torch.zeros_like(u[0])
    for t in range(u.shape[0]):
        v = torch.add(u[t], r, out=v_all[t])
        if multi:
            r = (r - m * fire(v, theta, max_spikes, True)) * alpha
        else:
            r = torch.where(v >= theta, r - m, r).mul_(alpha)
    a_all = fire(v_all, theta, max_spikes, multi)
    vpost = v_all[-1] - m * a_all[-1]
    return v_all, a_all, vpost


def spike_scan_fir(u, nu, theta):
    """Finite refractory kernel ``nu[K]`` (shared). Returns ``v[T, B, N]`` and ``a[T, B, N]``.

    ``nu[0]`` does not enter ``v`` (it would act at the spike's own step, after the spike).
    """
    v_all = u.clone()
    steps, taps = u.shape[0], nu.shape[0]
    nu = nu.to(u.dtype)[:, None, None]
    for t in range(steps - 1):
        a = (v_all[t] >= theta).to(u.dtype)
        end = min(steps, t + taps)
        if end > t + 1:
            v_all[t + 1 : end].addcmul_(nu[1 : end - t], a)
    return v_all, (v_all >= theta).to(u.dtype)
