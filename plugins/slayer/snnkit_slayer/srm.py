"""SLAYER on general SRM kernels (``--neuron srm``): finite PSP kernel eps, refractory nu.

Forward: ``u = eps-filter(c)``, then the spike-generation scan adds ``nu`` after each spike.
Backward (SLAYER): ``dL/dc = eps-correlation(s_t gS_t)``; the refractory term's dependence
on the spikes is dropped. Chained calls carry the last ``len(eps) - 1`` input currents
(with their gradient) and ``len(nu) - 1`` spikes, so a sequence fed in pieces gives the
same spikes and gradients as in one piece.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from snnkit.surrogates import Surrogate
from snnkit_slayer import backend


class SRMConfig(NamedTuple):
    """The static choices of a SLAYER SRM call."""

    surrogate: Surrogate
    post_reset: bool  # the surrogate is evaluated after the spike's own refractory response
    filter: str  # temporal filtering: "auto", "conv" or "fft"
    history: int  # leading steps of the input simulated by earlier calls
    backend: str = "auto"  # where the primitives run (see snnkit.kernels.select)


class SRMState(NamedTuple):
    """The history a chained call needs: recent input currents and spikes, ``[H, B, N]``."""

    current: torch.Tensor
    spikes: torch.Tensor

    @classmethod
    def empty(cls, batch: int, n: int, like: torch.Tensor) -> SRMState:
        return cls(like.new_zeros(0, batch, n), like.new_zeros(0, batch, n))

    def detach(self) -> SRMState:
        return SRMState(self.current.detach(), self.spikes.detach())

    @property
    def batch(self) -> int:
        return self.current.shape[1]


class SlayerSRMFunction(torch.autograd.Function):
    """``current_ext`` = the carried input history followed by this call's input current.

    ``config`` (an :class:`SRMConfig`): the first ``config.history`` steps of
    ``current_ext`` were simulated by earlier calls, whose last spikes are
    ``history_spikes``; only this call's steps are simulated and returned.
    """

    @staticmethod
    def forward(ctx, current_ext, history_spikes, eps, nu, theta, config: SRMConfig):
        method, history, where = config.filter, config.history, config.backend
        hs = history_spikes.shape[0]
        steps = current_ext.shape[0] - history
        with torch.no_grad():
            u = backend.causal_filter(current_ext, eps, method, where)[history:]
            if hs:  # refractory responses of the carried spikes
                past = torch.cat([history_spikes, history_spikes.new_zeros(steps, *u.shape[1:])])
                u += backend.causal_filter(past, nu, method, where)[hs:]
            v_all, a_all = backend.spike_scan_fir(u.contiguous(), nu, theta, where)
        ctx.config = config
        ctx.save_for_backward(v_all, eps, nu, theta)
        return a_all

    @staticmethod
    def backward(ctx, g_spikes):
        v_all, eps, nu, theta = ctx.saved_tensors
        surrogate, post_reset, method, history, where = ctx.config
        with torch.no_grad():
            v_eval = v_all
            if post_reset:  # nu[0]: the spike's own refractory response at its step
                v_eval = v_all + nu[0] * backend.spikes(v_all, theta)
            lam_u = surrogate(v_eval, theta) * g_spikes
            if history:
                lam_u = torch.cat([lam_u.new_zeros(history, *lam_u.shape[1:]), lam_u])
            g_current = backend.correlate(lam_u, eps, method, where)
        return g_current, None, None, None, None, None
