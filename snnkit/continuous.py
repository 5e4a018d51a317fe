"""The continuous-time current-based LIF between events, in closed form (time in ms).

Per neuron ``tau_m dV/dt = -V + I`` and ``tau_s dI/dt = -I`` (docs/neurons.md §6). With
``(V0, I0)`` at the last event and ``s`` the time since::

    I(s) = I0 exp(-s/tau_s)
    V(s) = V0 exp(-s/tau_m) + I0 kappa (exp(-s/tau_s) - exp(-s/tau_m)),  kappa = tau_s/(tau_s - tau_m)
    V(s) = (V0 + I0 s/tau) exp(-s/tau)                                  (tau_m = tau_s = tau)

:class:`LIFKernel` evaluates these (on floats or tensors, differentiably) and
:class:`LIReadout` is a layer of non-spiking leaky integrators driven by spike times, in
closed form: what event methods build on. The exact-events oracle
(:mod:`snnkit.reference.exact`) keeps its own copy of this maths, so that it never shares
a code path with the methods it checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["LIFKernel", "LIReadout", "li_readout"]

Number = float | torch.Tensor


def _exp(x: Number) -> Number:
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


def _one_minus_exp(x: Number) -> Number:
    """``1 - exp(-x)`` without cancellation for small ``x``."""
    return -torch.expm1(-x) if isinstance(x, torch.Tensor) else -math.expm1(-x)


@dataclass(frozen=True)
class LIFKernel:
    """The closed-form state between events for one pair of time constants (ms)."""

    tau_mem: float
    tau_syn: float

    @property
    def equal_taus(self) -> bool:
        """``tau_mem == tau_syn`` (the ``s e^{-s/tau}`` form)."""
        return self.tau_mem == self.tau_syn

    @property
    def kappa(self) -> float:
        """``tau_syn / (tau_syn - tau_mem)`` (undefined for equal taus)."""
        return self.tau_syn / (self.tau_syn - self.tau_mem)

    def current(self, i0: Number, s: Number) -> Number:
        """``I(s)`` from ``I0``."""
        return i0 * _exp(-s / self.tau_syn)

    def voltage(self, v0: Number, i0: Number, s: Number) -> Number:
        """``V(s)`` from ``(V0, I0)`` at ``s = 0``; the difference of exponentials by
        ``expm1``, so early times keep full relative precision."""
        em = _exp(-s / self.tau_mem)
        if self.equal_taus:
            return (v0 + i0 * s / self.tau_mem) * em
        expm1 = torch.expm1 if isinstance(s, torch.Tensor) else math.expm1
        if self.tau_syn < self.tau_mem:
            diff = em * expm1(-s * (1.0 / self.tau_syn - 1.0 / self.tau_mem))
        else:
            diff = -_exp(-s / self.tau_syn) * expm1(-s * (1.0 / self.tau_mem - 1.0 / self.tau_syn))
        return v0 * em + i0 * self.kappa * diff

    def slope(self, v0: Number, i0: Number, s: Number) -> Number:
        """``dV/ds = (I(s) - V(s)) / tau_mem``."""
        return (self.current(i0, s) - self.voltage(v0, i0, s)) / self.tau_mem

    def advance(self, v0: Number, i0: Number, s: Number) -> tuple[Number, Number]:
        """State ``(V, I)`` after ``s`` ms without events."""
        return self.voltage(v0, i0, s), self.current(i0, s)

    def stationary(self, v0: Number, i0: Number) -> Number:
        """The ``s`` (possibly negative, NaN or inf where there is none) with ``dV/ds = 0``."""
        if self.equal_taus:
            return self.tau_mem * (1.0 - v0 / i0)
        ratio = (v0 - i0 * self.kappa) / (i0 * (1.0 - self.kappa))
        log = torch.log if isinstance(ratio, torch.Tensor) else math.log
        return log(ratio) / (1.0 / self.tau_mem - 1.0 / self.tau_syn)

    def psp_peak(self) -> float:
        """Peak of ``V`` after a unit current jump from rest (scale for weight initialisation)."""
        return float(self.voltage(0.0, 1.0, self.stationary(0.0, 1.0)))

    def integral(self, v0: Number, i0: Number, length: Number) -> Number:
        """``int_0^L V(s) ds``."""
        tm, ts = self.tau_mem, self.tau_syn
        if self.equal_taus:
            em = _exp(-length / tm)
            return v0 * tm * _one_minus_exp(length / tm) + i0 * tm * (
                _one_minus_exp(length / tm) - em * length / tm
            )
        im = tm * _one_minus_exp(length / tm)
        return v0 * im + i0 * self.kappa * (ts * _one_minus_exp(length / ts) - im)

    def integral_exp(self, v0: Number, i0: Number, length: Number, scale: float) -> Number:
        """``int_0^L exp(-s/scale) V(s) ds``."""

        def k(rate: float) -> Number:  # int_0^L exp(-rate s) ds
            return _one_minus_exp(rate * length) / rate

        rm = 1.0 / scale + 1.0 / self.tau_mem
        if self.equal_taus:  # int_0^L s e^{-r s} ds = (1 - e^{-rL}(1 + rL)) / r^2
            first = (_one_minus_exp(rm * length) - _exp(-rm * length) * rm * length) / rm**2
            return v0 * k(rm) + i0 / self.tau_mem * first
        rs = 1.0 / scale + 1.0 / self.tau_syn
        return v0 * k(rm) + i0 * self.kappa * (k(rs) - k(rm))


@dataclass
class LIReadout:
    """Non-spiking leaky integrators fed by ``times`` with jumps ``jumps`` (differentiable).

    ``times`` [B, E] sorted arrival times (padding: ``duration`` with zero jumps);
    ``jumps`` [B, E, C] the current each arrival adds to each readout neuron. The readout
    is linear, so ``V(t) = sum_e jumps_e K(t - t_e)`` with ``K`` the response to a unit
    current jump. Everything is computed in the dtype of ``times``.
    """

    times: torch.Tensor
    jumps: torch.Tensor
    kernel: LIFKernel
    duration: float

    def voltage(self, t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
        """``V`` at the times ``t`` [M] in ``[0, duration]``, as ``[B, C, M]``."""
        t = torch.as_tensor(t, dtype=self.times.dtype, device=self.times.device).reshape(-1)
        s = t[None, None, :] - self.times[:, :, None]
        response = self.kernel.voltage(0.0, 1.0, s.clamp(min=0.0)) * (s >= 0)
        return torch.einsum("bem,bec->bcm", response, self.jumps)

    def integral(self) -> torch.Tensor:
        """``int_0^T V dt``, [B, C]."""
        per_event = self.kernel.integral(0.0, 1.0, self.duration - self.times)
        return torch.einsum("be,bec->bc", per_event, self.jumps)

    def integral_exp(self, scale: float | None = None) -> torch.Tensor:
        """``int_0^T exp(-t/scale) V dt`` (``scale`` defaults to ``duration``), [B, C]."""
        scale = self.duration if scale is None else scale
        tail = self.kernel.integral_exp(0.0, 1.0, self.duration - self.times, scale)
        per_event = torch.exp(-self.times / scale) * tail
        return torch.einsum("be,bec->bc", per_event, self.jumps)

    def mean(self) -> torch.Tensor:
        """``(1/T) int_0^T V dt``, [B, C]."""
        return self.integral() / self.duration

    def states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(V, I)`` just after each arrival, [B, E, C] each."""
        s = self.times[:, :, None] - self.times[:, None, :]  # [B, e, j]: t_e - t_j
        E = self.times.shape[1]
        earlier = torch.ones(
            E, E, dtype=torch.bool, device=s.device
        ).tril()  # j <= e in sorted order
        s = s.clamp(min=0.0)
        kv = self.kernel.voltage(0.0, 1.0, s) * earlier
        ki = self.kernel.current(1.0, s) * earlier
        return (
            torch.einsum("bej,bjc->bec", kv, self.jumps),
            torch.einsum("bej,bjc->bec", ki, self.jumps),
        )

    def maximum(self) -> torch.Tensor:
        """``max_{t in [0, T]} V(t)``, [B, C]: over arrival times, ``T`` and interior extrema."""
        B, E, C = self.jumps.shape
        if E == 0:  # no input: V = 0 throughout
            return self.jumps.new_zeros(B, C)
        v0, i0 = self.states()
        ends = torch.cat([self.times[:, 1:], self.times.new_full((B, 1), self.duration)], 1)
        length = (ends - self.times)[:, :, None].expand_as(v0)
        k = self.kernel
        with torch.no_grad():  # interior stationary point of each segment (detached)
            s_star = k.stationary(v0, i0)
            inside = torch.isfinite(s_star) & (s_star > 0) & (s_star < length)
            s_star = torch.where(inside, s_star, torch.zeros_like(s_star))
        interior = torch.where(inside, k.voltage(v0, i0, s_star), -math.inf)
        zero = torch.zeros_like(v0[:, :1])  # V(0) = 0
        return torch.cat([zero, v0, k.voltage(v0, i0, length), interior], dim=1).amax(dim=1)


def li_readout(
    times: torch.Tensor, weight: torch.Tensor, kernel: LIFKernel, duration: float
) -> LIReadout:
    """Leaky integrators fed by spike times ``[B, N, K]`` (``inf`` = none) through
    ``weight [C, N]``."""
    B, N, K = times.shape
    flat = times.reshape(B, N * K)
    finite = torch.isfinite(flat)
    t = torch.where(finite, flat, torch.full_like(flat, duration))
    used = int(finite.sum(1).max()) if flat.numel() else 0
    order = torch.argsort(t.detach(), dim=1, stable=True)[:, :used]  # time order, padding last
    # each used spike's jump is its neuron's weight column, gathered for the used spikes only
    # ([B, used, C], not [B, N*K, C]: at 125 Hz on SHD's 256 neurons 0.1 rather than 0.5 GB)
    source = torch.div(order, max(K, 1), rounding_mode="floor")
    jumps = weight.t()[source] * finite.gather(1, order)[..., None].to(weight.dtype)
    return LIReadout(t.gather(1, order), jumps, kernel, duration)
