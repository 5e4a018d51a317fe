"""Event-exact forward pass of one current-based LIF layer, batched in torch.

Model and event order as in :mod:`snnkit.reference.exact` (docs/neurons.md §6): input arrivals
jump ``I`` by the weight, a crossing of ``theta`` is a spike that resets ``V``, an arrival at
the same time as a crossing is processed first. Two schedules, same results:

- feed-forward layers (no recurrent weights): neurons are independent given the input,
  so every ``[B, N]`` neuron is advanced window by window between consecutive arrivals,
  firing as often as it crosses inside the window (loops: arrivals x spikes per window);
- recurrent layers: one event per sample per step in global time order (the next crossing
  of any neuron or the next arrival), since a spike changes the other neurons' currents.

Both record what the adjoint pass needs: spike times, ``I`` just before each spike (so
``I - theta = tau_m dV/dt`` there), and for the recurrent schedule the event sequence.
Spike buffers grow as needed; a neuron firing more than ``max_spikes`` times raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from snnkit.continuous import LIFKernel
from snnkit.errors import SnnkitError
from snnkit_eventprop.solver import first_crossing

__all__ = ["LayerConfig", "LayerRecord", "arrivals", "run_layer"]


@dataclass(frozen=True)
class LayerConfig:
    """Neuron constants of one layer (ms) and the limits of the simulation."""

    tau_mem: float
    tau_syn: float
    threshold: float
    reset: str  # "zero" (V -> v_reset) or "subtract" (V -> V - theta)
    v_reset: float
    duration: float
    max_spikes: int
    name: str = "layer"
    # the spike-count regulariser (a heuristic, snnkit_eventprop.regularise): off at 0
    reg_strength: float = 0.0
    reg_target: float = 0.0  # spikes per neuron and trial

    @property
    def kernel(self) -> LIFKernel:
        return LIFKernel(self.tau_mem, self.tau_syn)

    @property
    def v_after(self) -> float:
        """``V`` just after a spike (the subtractive reset leaves ``theta - theta = 0``)."""
        return self.v_reset if self.reset == "zero" else 0.0


@dataclass
class LayerRecord:
    """What the forward pass leaves for the adjoint pass (all detached).

    ``times``/``currents`` ``[B, N, K]``: spike times (``inf`` padded) and ``I`` before each
    spike. ``arrival_times``/``sources`` ``[B, E]``: input spikes in time order (``inf``
    padded) and their presynaptic neuron; ``order`` maps them back to the input's flat
    ``[N_in * K_in]`` slots. ``events`` (recurrent schedule only): per step ``[B, S]``
    tensors ``(time, kind, index, slot)``, kind 0 none / 1 arrival (index = arrival slot) /
    2 spike (index = neuron, slot = its spike number). ``log`` (recurrent layers run by the
    compiled kernels instead): ``(neuron [B, L], arrivals before [B, L], length [B])`` of
    each sample's spikes in time order.
    """

    times: torch.Tensor
    currents: torch.Tensor
    arrival_times: torch.Tensor
    sources: torch.Tensor
    order: torch.Tensor
    events: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    log: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def counts(self) -> torch.Tensor:
        return torch.isfinite(self.times).sum(-1)


def arrivals(pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input spikes ``[B, N_in, K_in]`` in time order: times ``[B, E]``, sources, flat order."""
    B, n_in, k_in = pre.shape
    flat = pre.detach().reshape(B, n_in * k_in)
    times, order = torch.sort(flat, dim=1, stable=True)
    return times, torch.div(order, max(k_in, 1), rounding_mode="floor"), order


class SpikeBuffer:
    """Spike times and currents ``[B, N, K]``, grown on demand, bounded by ``max_spikes``."""

    def __init__(self, like: torch.Tensor, neurons: int, config: LayerConfig) -> None:
        B = like.shape[0]
        self.config = config
        self.times = like.new_full((B, neurons, 4), math.inf)
        self.currents = like.new_zeros(B, neurons, 4)
        self.counts = torch.zeros(B, neurons, dtype=torch.long, device=like.device)

    def add(self, mask: torch.Tensor, t: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Store a spike for every ``mask`` entry; returns the slot numbers ``[B, N]``."""
        slots = self.counts.clone()
        b, n = mask.nonzero(as_tuple=True)
        if b.numel() == 0:
            return slots
        top = int(self.counts[b, n].max()) + 1
        if top > self.config.max_spikes:
            first = int((self.counts[b, n] + 1 > self.config.max_spikes).nonzero()[0])
            raise SnnkitError(
                f"{self.config.name}: neuron {int(n[first])} of sample {int(b[first])} fires more "
                f"than max_spikes={self.config.max_spikes} times before "
                f"t={float(t[b[first], n[first]]):.6g} ms; spikes are never dropped, pass a larger "
                "max_spikes= to the network or use weaker weights"
            )
        if top > self.times.shape[2]:
            grow = max(top, 2 * self.times.shape[2]) - self.times.shape[2]
            pad = self.times.new_full((*self.times.shape[:2], grow), math.inf)
            self.times = torch.cat([self.times, pad], 2)
            self.currents = torch.cat([self.currents, torch.zeros_like(pad)], 2)
        k = self.counts[b, n]
        self.times[b, n, k] = t[b, n]
        self.currents[b, n, k] = current[b, n]
        self.counts[b, n] += 1
        return slots

    def trimmed(self) -> tuple[torch.Tensor, torch.Tensor]:
        K = int(self.counts.max()) if self.counts.numel() else 0
        return self.times[..., :K].contiguous(), self.currents[..., :K].contiguous()


def _reset(config: LayerConfig, v: torch.Tensor) -> torch.Tensor:
    if config.reset == "zero":
        return torch.full_like(v, config.v_reset)
    return v - config.threshold


def run_layer(
    pre: torch.Tensor,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    config: LayerConfig,
) -> LayerRecord:
    """Simulate one layer on input spike times ``pre [B, N_in, K_in]`` (no autograd)."""
    with torch.no_grad():
        times, sources, order = arrivals(pre)
        buf = SpikeBuffer(pre, weight.shape[0], config)
        events = None
        if recurrent is None:
            _feedforward(times, sources, weight.detach(), config, buf)
        else:
            events = _global(times, sources, weight.detach(), recurrent.detach(), config, buf)
        spikes, currents = buf.trimmed()
        return LayerRecord(spikes, currents, times, sources, order, events)


def _feedforward(times, sources, weight, config: LayerConfig, buf: SpikeBuffer) -> None:
    kernel, theta = config.kernel, config.threshold
    B, E = times.shape
    N = weight.shape[0]
    v = times.new_zeros(B, N)
    i = times.new_zeros(B, N)
    t = times.new_zeros(B, N)
    w_t = weight.t()  # [N_in, N]
    for e in range(E + 1):
        if e < E:
            valid = torch.isfinite(times[:, e])
            end = torch.where(valid, times[:, e], times.new_full((B,), config.duration))
        else:
            valid = torch.zeros(B, dtype=torch.bool, device=times.device)
            end = times.new_full((B,), config.duration)
        end = end[:, None].expand(B, N)
        while True:  # every crossing inside this window, in time order per neuron
            s = first_crossing(kernel, v, i, theta, end - t)
            fire = t + s < end
            if not bool(fire.any()):
                break
            tk = t + s
            v_new, i_new = kernel.advance(v, i, torch.where(fire, s, torch.zeros_like(s)))
            buf.add(fire, tk, i_new)
            v = torch.where(fire, _reset(config, v_new), v)
            i = torch.where(fire, i_new, i)
            t = torch.where(fire, tk, t)
        v, i = kernel.advance(v, i, end - t)
        t = end
        if not bool(valid.any()):
            break
        jump = w_t[sources[:, e]]  # [B, N]
        i = i + torch.where(valid[:, None], jump, torch.zeros_like(jump))


def _global(times, sources, weight, recurrent, config: LayerConfig, buf: SpikeBuffer):
    kernel, theta = config.kernel, config.threshold
    B, E = times.shape
    N = weight.shape[0]
    padded = torch.cat([times, times.new_full((B, 1), math.inf)], 1)
    src = torch.cat([sources, sources.new_zeros(B, 1)], 1)
    w_t, r_t = weight.t(), recurrent.t()  # rows: presynaptic neuron
    v = times.new_zeros(B, N)
    i = times.new_zeros(B, N)
    t = times.new_zeros(B)
    ptr = torch.zeros(B, dtype=torch.long, device=times.device)
    rows = torch.arange(B, device=times.device)
    log_t, log_kind, log_index, log_slot = [], [], [], []
    while True:
        t_arr = padded[rows, ptr]
        horizon = t_arr.clamp(max=config.duration)
        s = first_crossing(kernel, v, i, theta, (horizon - t)[:, None].expand(B, N))
        s_min, n = s.min(1)
        spike = t + s_min < horizon
        arrival = ~spike & torch.isfinite(t_arr)
        if not bool((spike | arrival).any()):
            break
        t_new = torch.where(spike, t + s_min, torch.where(arrival, t_arr, t))
        v, i = kernel.advance(v, i, (t_new - t)[:, None])
        mask = torch.nn.functional.one_hot(n, N).bool() & spike[:, None]
        slots = buf.add(mask, t_new[:, None].expand(B, N), i)
        v = torch.where(mask, _reset(config, v), v)
        i = i + torch.where(spike[:, None], r_t[n], torch.zeros_like(i))
        jump = w_t[src[rows, ptr]]
        i = i + torch.where(arrival[:, None], jump, torch.zeros_like(jump))
        kind = torch.where(spike, 2, torch.where(arrival, 1, 0))
        log_t.append(t_new)
        log_kind.append(kind)
        log_index.append(torch.where(spike, n, ptr))
        log_slot.append(slots[rows, n])
        ptr = ptr + arrival.long()
        t = t_new
    if not log_t:
        empty = times.new_zeros(B, 0)
        z = torch.zeros(B, 0, dtype=torch.long, device=times.device)
        return empty, z, z, z
    return (
        torch.stack(log_t, 1),
        torch.stack(log_kind, 1),
        torch.stack(log_index, 1),
        torch.stack(log_slot, 1),
    )
