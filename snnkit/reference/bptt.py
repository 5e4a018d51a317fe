"""The BPTT oracle: a plain autograd loop over the discrete-time LIF equations (METHODS.md §1).

Every raster method's gradient is checked against this loop in float64. It is written
for clarity, step by step, with the surrogate entering only through :class:`SpikeFunction`
(reverse mode and forward mode, so the loop's gradient can be verified by ``torch.func.jvp``).
``reset_grad="through"`` lets the spike inside the reset carry its surrogate gradient
(EXODUS's oracle); ``"detached"`` stops it (SLAYER's oracle).
"""

from __future__ import annotations

from typing import Literal

import torch

from snnkit.methods import GradientMethod
from snnkit.neurons import LIF, NeuronSpec
from snnkit.nn import LIFState, SpikingLayer
from snnkit.surrogates import Surrogate

ResetGrad = Literal["through", "detached"]


def heaviside_spikes(
    v: torch.Tensor, theta: torch.Tensor, max_spikes: int | None, multi: bool
) -> torch.Tensor:
    """a = H(v - theta), or H(v - theta) * min(floor(v/theta), max_spikes) for multi-spike."""
    fired = v >= theta
    if not multi:
        return fired.to(v.dtype)
    count = torch.floor(v / theta)
    if max_spikes is not None:
        count = torch.clamp(count, max=max_spikes)
    return torch.where(fired, count, torch.zeros_like(v))


class SpikeFunction(torch.autograd.Function):
    """Spikes forward; ds/dv = surrogate(v, theta) and ds/dtheta = -surrogate(v, theta) backward."""

    @staticmethod
    def forward(v, theta, surrogate, max_spikes, multi):  # noqa: D102
        return heaviside_spikes(v, theta, max_spikes, multi)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, theta, surrogate, _, _ = inputs
        ctx.surrogate = surrogate
        ctx.save_for_backward(v, theta)
        ctx.save_for_forward(v, theta)

    @staticmethod
    def backward(ctx, grad):
        v, theta = ctx.saved_tensors
        g = grad * ctx.surrogate(v, theta)
        g_theta = None
        if ctx.needs_input_grad[1]:
            g_theta = (-g).sum_to_size(theta.shape)
        return g, g_theta, None, None, None

    @staticmethod
    def jvp(ctx, v_dot, theta_dot, *_):
        v, theta = ctx.saved_tensors
        s = ctx.surrogate(v, theta)
        out = s * v_dot if v_dot is not None else torch.zeros_like(v)
        if theta_dot is not None:
            out = out - s * theta_dot
        return out


def spike(
    v: torch.Tensor,
    theta: torch.Tensor,
    surrogate: Surrogate,
    max_spikes: int | None = None,
    multi: bool = False,
) -> torch.Tensor:
    """Differentiable spike nonlinearity with a surrogate derivative."""
    return SpikeFunction.apply(v, theta, surrogate, max_spikes, multi)


def lif_loop(
    current: torch.Tensor,
    state: LIFState,
    *,
    alpha: torch.Tensor,
    beta: torch.Tensor | None,
    theta: torch.Tensor,
    reset_amount: torch.Tensor,
    neuron: LIF,
    surrogate: Surrogate,
    reset_grad: ResetGrad = "through",
    recurrent_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run the LIF equations step by step. Returns (spikes, pre-reset v, final state), time-first."""
    v, i, a = state.v, state.i, state.a
    spikes, membrane = [], []
    # unbind (backward: one stack) rather than current[t] (backward: a full-size zero
    # buffer per step, O(T^2) in total)
    for x in current.unbind(0):
        if recurrent_weight is not None:
            x = x + a @ recurrent_weight.t()
        i = x if beta is None else beta * i + x
        v = alpha * v + i  # pre-reset membrane v_t
        a = spike(v, theta, surrogate, neuron.max_spikes, neuron.multi_spike)
        membrane.append(v)
        spikes.append(a)
        a_reset = a if reset_grad == "through" else a.detach()
        v = v - reset_amount * a_reset if neuron.reset == "subtract" else v * (1 - a_reset)
    return torch.stack(spikes), torch.stack(membrane), LIFState(v, None if beta is None else i, a)


class BPTTLayer(SpikingLayer):
    """A spiking layer whose gradient is autograd through :func:`lif_loop`."""

    def __init__(self, *args, reset_grad: ResetGrad = "through", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if reset_grad not in ("through", "detached"):
            from snnkit.errors import SnnkitError

            raise SnnkitError(f"reset_grad must be 'through' or 'detached', got {reset_grad!r}")
        self.reset_grad = reset_grad
        self.last_membrane: torch.Tensor | None = None

    def dynamics(self, current, state):
        p = self.params
        spikes, membrane, state = lif_loop(
            current,
            state,
            alpha=p.alpha(current),
            beta=p.beta(current),
            theta=p.theta(current),
            reset_amount=p.reset_amount(current),
            neuron=self.neuron,
            surrogate=self.surrogate,
            reset_grad=self.reset_grad,
            recurrent_weight=self.recurrent_weight,
        )
        self.last_membrane = membrane
        return spikes, state


class BPTT(GradientMethod):
    """Surrogate-gradient backpropagation through time with a plain autograd graph."""

    name = "bptt"
    summary = "Surrogate-gradient BPTT, autograd through a step loop (the reference oracle)"
    paper = "Neftci, Mostafa & Zenke, IEEE Signal Processing Magazine 36(6), 2019"
    version = "1"
    representation = "raster"
    oracle = "bptt"
    exact = True
    neurons = ("lif", "if")

    def supports(self, neuron: NeuronSpec) -> str | None:
        if isinstance(neuron, LIF):
            return None
        return f"BPTT simulates LIF/IF hidden layers; '{neuron.kind}' is a readout neuron"

    def layer(
        self, neuron, in_features, out_features, *, recurrent=False, surrogate=None, **options
    ):
        self.check(neuron)
        return BPTTLayer(
            neuron, in_features, out_features, recurrent=recurrent, surrogate=surrogate, **options
        )


class DetachedResetBPTT(BPTT):
    """BPTT with the spike inside the reset detached (the oracle for SLAYER-like methods)."""

    name = "bptt-detached-reset"
    summary = "Surrogate-gradient BPTT with the reset's gradient detached (SLAYER's oracle)"
    oracle = "bptt-detached-reset"

    def layer(
        self, neuron, in_features, out_features, *, recurrent=False, surrogate=None, **options
    ):
        options.setdefault("reset_grad", "detached")
        return super().layer(
            neuron, in_features, out_features, recurrent=recurrent, surrogate=surrogate, **options
        )
