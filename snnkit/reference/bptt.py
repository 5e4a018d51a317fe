"""The BPTT oracle: a plain autograd loop over a neuron's own reference step.

Every raster method's gradient is checked against this loop in float64. It runs any
neuron spec's :meth:`~snnkit.neurons.NeuronSpec.step` step by step under autograd, so
``--grad bptt`` trains every registered neuron and a plugin neuron's oracle is its own
dynamics. The surrogate enters only through :class:`SpikeFunction` (reverse mode and
forward mode, so the loop's gradient can be verified by ``torch.func.jvp``).
``reset_grad="through"`` lets the spike inside a reset carry its surrogate gradient
(EXODUS's oracle); ``"detached"`` stops it (SLAYER's oracle). The conventions are
written out in ``docs/neurons.md``.
"""

from __future__ import annotations

from typing import Literal

import torch

from snnkit.errors import SnnkitError
from snnkit.methods import GradientMethod
from snnkit.neurons import NeuronSpec, fire
from snnkit.nn import SpikingNeuron
from snnkit.surrogates import Surrogate

ResetGrad = Literal["through", "detached"]
RESET_GRADS = ("through", "detached")


class SpikeFunction(torch.autograd.Function):
    """Spikes forward; ds/dv = surrogate(v, theta) and ds/dtheta = -surrogate(v, theta) backward."""

    @staticmethod
    def forward(v, theta, surrogate, max_spikes, multi):  # noqa: D102
        return fire(v, theta, max_spikes, multi)

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


class SurrogateSpike:
    """The :class:`~snnkit.neurons.SpikeFn` of the oracle: fires with a surrogate gradient,
    detaches the spike inside a reset for ``reset_grad="detached"``, and records the
    membrane each spike was read from (``membrane``, for inspection and tests)."""

    def __init__(self, surrogate: Surrogate, reset_grad: ResetGrad = "through") -> None:
        self.surrogate, self.detached = surrogate, reset_grad == "detached"
        self.membrane: list[torch.Tensor] = []

    def __call__(self, v, theta, *, multi=False, max_spikes=None):
        self.membrane.append(v)
        return SpikeFunction.apply(v, theta, self.surrogate, max_spikes, multi)

    def reset(self, a):
        return a.detach() if self.detached else a


def run_steps(neuron, coefficients, state, current, spike_fn, recurrent_weight=None):
    """Loop ``neuron.step`` over ``current`` ``[T, B, N]``; returns (outputs, final state).

    A recurrent population adds ``a_{t-1} @ recurrent_weight.T`` to each step's current,
    ``a`` being the state's last spikes.
    """
    outputs = []
    # unbind (backward: one stack) rather than current[t] (backward: a full-size zero
    # buffer per step, O(T^2) in total)
    for x in current.unbind(0):
        if recurrent_weight is not None:
            x = x + state.a @ recurrent_weight.t()
        out, state = neuron.step(coefficients, state, x, spike_fn)
        outputs.append(out)
    return torch.stack(outputs), state


class BPTTNeuron(SpikingNeuron):
    """A population whose gradient is autograd through its neuron's reference step."""

    def __init__(self, *args, reset_grad: ResetGrad = "through", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if reset_grad not in RESET_GRADS:
            raise SnnkitError(f"reset_grad must be 'through' or 'detached', got {reset_grad!r}")
        self.reset_grad = reset_grad
        self.last_membrane: torch.Tensor | None = None

    def dynamics(self, current, state):
        spike_fn = SurrogateSpike(self.surrogate, self.reset_grad)
        coefficients = self.params.coefficients(current)
        spikes, state = run_steps(
            self.neuron, coefficients, state, current, spike_fn, self.recurrent_weight
        )
        self.last_membrane = torch.stack(spike_fn.membrane) if spike_fn.membrane else None
        return spikes, state


class BPTT(GradientMethod):
    """Surrogate-gradient backpropagation through time with a plain autograd graph."""

    name = "bptt"
    summary = "Surrogate-gradient BPTT, autograd through any neuron's step (the reference oracle)"
    paper = "Neftci, Mostafa & Zenke, IEEE Signal Processing Magazine 36(6), 2019"
    version = "2"
    representation = "raster"
    oracle = "bptt"
    exact = True
    neurons = ("*",)  # any neuron with a reference step
    reset_grad: ResetGrad = "through"

    def supports(self, neuron):
        if not neuron.spiking:
            return f"'{neuron.kind}' does not spike: it is a readout neuron"
        if type(neuron).step is NeuronSpec.step:
            return f"neuron '{neuron.kind}' defines no step (its dynamics) to differentiate"
        return None

    def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
        self.check(spec)
        options.setdefault("reset_grad", self.reset_grad)
        return BPTTNeuron(spec, shape, surrogate=surrogate, recurrent=recurrent, **options)


class DetachedResetBPTT(BPTT):
    """BPTT with the spike inside the reset detached (the oracle for SLAYER-like methods)."""

    name = "bptt-detached-reset"
    summary = "Surrogate-gradient BPTT with the reset's gradient detached (SLAYER's oracle)"
    oracle = "bptt-detached-reset"
    reset_grad: ResetGrad = "detached"
