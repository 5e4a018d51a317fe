"""EEST forward pass of one feed-forward layer, batched over samples and neurons in torch.

Neuron (docs/methods/eest.md): current-based LIF with ``tau_m = 2 tau_s = tau``. After an input
spike from ``i`` (weight ``w_i``, time ``t_i``) and own spikes ``t_j`` (reset by subtracting
``theta``), with ``z = exp(t/tau)``::

    V(t) = b / z - a / z^2,   a = sum_i w_i z_i^2,   b = sum_i w_i z_i - theta sum_j z_j

so ``V = theta`` is the quadratic ``theta z^2 - b z + a = 0``, whose upward crossing is
``z = 2a / (b + x)``, ``x = sqrt(b^2 - 4 a theta)``.

**Range.** ``z`` is never formed globally: each neuron measures time from its last event
``t0`` (an arrival or its own spike), where ``a = I(t0)`` and ``b = V(t0) + I(t0)``
(``z(t0) = 1``); moving ``t0`` forward rescales ``a`` by ``exp(-2 dt/tau)`` and ``b`` by
``exp(-dt/tau)``, i.e. advances ``(V, I)``. Every exponential has a non-positive argument
except the root itself, which lies inside one inter-event window. The root is taken as
``s = tau log1p(z - 1)``, ``z - 1 = 4 a (theta - V) / ((b + x)(a - V + x))``, without
cancellation. A window (between consecutive sorted arrivals) may hold several spikes
(``spike_limit=1``: single-spike neurons, silent after their first spike).
``reset="zero"`` is the same: ``V = theta`` at the crossing, so subtracting ``theta`` is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from snnkit.errors import SnnkitError

__all__ = ["LayerConfig", "LayerRecord", "arrivals", "crossing", "run_layer"]


@dataclass(frozen=True)
class LayerConfig:
    """Constants of one layer (ms) and the limits of its simulation."""

    tau: float  # tau_mem = 2 tau_syn
    threshold: float
    duration: float
    max_spikes: int
    name: str = "layer"
    spike_limit: int = 0  # 1: single-spike neurons (later crossings are not spikes); 0: none


@dataclass
class LayerRecord:
    """What the backward pass needs (detached): spike times ``[B, N, K]`` (``inf`` padded),
    ``I`` at each spike (``I - theta`` is ``x`` in the spike's own frame), the sorted
    arrivals ``[B, E]``, their presynaptic neurons and their slots in the flat input."""

    times: torch.Tensor
    currents: torch.Tensor
    arrival_times: torch.Tensor
    sources: torch.Tensor
    order: torch.Tensor

    @property
    def counts(self) -> torch.Tensor:
        return torch.isfinite(self.times).sum(-1)


def arrivals(pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input spikes ``[B, N_in, K_in]`` in time order: times ``[B, E]``, sources, flat order."""
    B, n_in, k_in = pre.shape
    times, order = torch.sort(pre.detach().reshape(B, n_in * k_in), dim=1, stable=True)
    return times, torch.div(order, max(k_in, 1), rounding_mode="floor"), order


def crossing(v: torch.Tensor, i: torch.Tensor, theta: float, tau: float) -> torch.Tensor:
    """Time ``s > 0`` from state ``(V, I)`` to the next upward crossing of ``theta``
    (closed form, elementwise), ``inf`` where there is none."""
    b = v + i
    disc = b * b - 4.0 * theta * i
    x = disc.clamp(min=0.0).sqrt()
    den = (b + x) * (i - v + x)
    ok = (disc >= 0) & (i > 0) & (v < theta) & (b + x > 0) & (i - v + x > 0)
    zm1 = 4.0 * i * (theta - v) / torch.where(ok, den, torch.ones_like(den))
    return torch.where(ok, tau * torch.log1p(zm1), torch.full_like(v, math.inf))


def advance(v, i, s, tau):
    """``(V, I)`` after ``s`` ms without events: ``V = (V + I) q - I q^2``, ``q = e^{-s/tau}``."""
    q = torch.exp(-s / tau)
    return v * q - i * q * torch.expm1(-s / tau), i * q * q


class SpikeBuffer:
    """Spike times and currents ``[B, N, K]``, grown on demand, bounded by ``max_spikes``."""

    def __init__(self, like: torch.Tensor, neurons: int, config: LayerConfig) -> None:
        B = like.shape[0]
        self.config = config
        self.times = like.new_full((B, neurons, 4), math.inf)
        self.currents = like.new_zeros(B, neurons, 4)
        self.counts = torch.zeros(B, neurons, dtype=torch.long, device=like.device)

    def add(self, mask: torch.Tensor, t: torch.Tensor, current: torch.Tensor) -> None:
        b, n = mask.nonzero(as_tuple=True)
        k = self.counts[b, n]
        top = int(k.max()) + 1
        if top > self.config.max_spikes:
            over = int((k + 1 > self.config.max_spikes).nonzero()[0])
            raise SnnkitError(
                f"{self.config.name}: neuron {int(n[over])} of sample {int(b[over])} fires more "
                f"than max_spikes={self.config.max_spikes} times; spikes are never dropped, "
                "pass a larger max_spikes= to the network or use weaker weights"
            )
        if top > self.times.shape[2]:
            pad = self.times.new_full((*self.times.shape[:2], self.times.shape[2]), math.inf)
            self.times = torch.cat([self.times, pad], 2)
            self.currents = torch.cat([self.currents, torch.zeros_like(pad)], 2)
        self.times[b, n, k] = t[b, n]
        self.currents[b, n, k] = current[b, n]
        self.counts[b, n] += 1

    def trimmed(self) -> tuple[torch.Tensor, torch.Tensor]:
        K = int(self.counts.max()) if self.counts.numel() else 0
        return self.times[..., :K].contiguous(), self.currents[..., :K].contiguous()


def run_layer(pre: torch.Tensor, weight: torch.Tensor, config: LayerConfig) -> LayerRecord:
    """Simulate one layer on input spike times ``pre [B, N_in, K_in]`` (no autograd)."""
    with torch.no_grad():
        times, sources, order = arrivals(pre)
        B, E = times.shape
        N = weight.shape[0]
        buf = SpikeBuffer(pre, N, config)
        w_t = weight.detach().to(pre.dtype).t()  # [N_in, N]
        tau, theta = config.tau, config.threshold
        v, i, t = (times.new_zeros(B, N) for _ in range(3))
        for e in range(E + 1):
            if e < E:
                valid = times[:, e] < config.duration
                end = torch.where(valid, times[:, e], times.new_tensor(config.duration))
            else:
                valid = torch.zeros(B, dtype=torch.bool, device=times.device)
                end = times.new_full((B,), config.duration)
            end = end[:, None].expand(B, N)
            while True:  # every crossing inside this window, in time order
                s = crossing(v, i, theta, tau)
                fire = t + s < end
                if config.spike_limit:
                    fire &= buf.counts < config.spike_limit
                if not bool(fire.any()):
                    break
                s = torch.where(fire, s, torch.zeros_like(s))
                i_k = i * torch.exp(-2.0 * s / tau)
                buf.add(fire, t + s, i_k)
                v = torch.where(fire, torch.zeros_like(v), v)  # V = theta - theta
                i = torch.where(fire, i_k, i)
                t = t + s
            v, i = advance(v, i, end - t, tau)
            t = end
            if not bool(valid.any()):
                break
            jump = w_t[sources[:, e]]
            i = i + torch.where(valid[:, None], jump, torch.zeros_like(jump))
        spikes, currents = buf.trimmed()
        return LayerRecord(spikes, currents, times, sources, order)
