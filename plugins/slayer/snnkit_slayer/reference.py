"""The oracle for general SRM kernels: autograd through an explicitly unrolled SRM.

Step by step, written for clarity (slow), with the refractory term's spikes detached,
which is SLAYER's approximation stated as a computation graph::

    u_t = sum_k eps[k] c_{t-k}
    v_t = u_t + sum_{1 <= k <= t} nu[k] a_{t-k}.detach()
    a_t = spike(v_t)      (surrogate at v_t, or at v_t + nu[0] a_t when post_reset)
"""

from __future__ import annotations

import torch

from snnkit.reference.bptt import spike
from snnkit.surrogates import Surrogate


class _PostResetSpike(torch.autograd.Function):
    """H(v - theta) forward; backward the surrogate at the post-reset ``v + nu0 a``."""

    @staticmethod
    def forward(ctx, v, theta, surrogate, nu0):
        a = (v >= theta).to(v.dtype)
        ctx.surrogate = surrogate
        ctx.save_for_backward(v + nu0 * a, theta)
        return a

    @staticmethod
    def backward(ctx, grad):
        v_post, theta = ctx.saved_tensors
        return grad * ctx.surrogate(v_post, theta), None, None, None


def srm_unrolled(
    current: torch.Tensor,
    eps: torch.Tensor,
    nu: torch.Tensor,
    theta: torch.Tensor,
    surrogate: Surrogate,
    *,
    post_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membrane ``[T, B, N]`` of an SRM layer on input ``current[T, B, N]``."""
    spikes: list[torch.Tensor] = []
    membrane: list[torch.Tensor] = []
    for t in range(current.shape[0]):
        u = sum(eps[k] * current[t - k] for k in range(min(len(eps), t + 1)))
        refractory = sum(nu[k] * spikes[t - k].detach() for k in range(1, min(len(nu), t + 1)))
        v = u + refractory
        if post_reset:
            a = _PostResetSpike.apply(v, theta, surrogate, nu[0])
        else:
            a = spike(v, theta, surrogate)
        membrane.append(v)
        spikes.append(a)
    return torch.stack(spikes), torch.stack(membrane)
