"""Deliberately broken gradient methods: the conformance suite must fail each of them.

Every one computes the correct forward pass and a gradient that is wrong in one
specific, plausible way. Importable as a plugin module too (hooks at the bottom).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnkit import hookimpl
from snnkit.reference.bptt import BPTT, BPTTNeuron
from snnkit.surrogates import Surrogate


class _FlipGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return -g


class _ShiftGradInTime(torch.autograd.Function):
    """Identity forward; the gradient of step t is taken from step t + 1 (off by one)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        shifted = torch.zeros_like(g)
        shifted[:-1] = g[1:]
        return shifted


@dataclass(frozen=True)
class _Wider(Surrogate):
    """The same surrogate stretched 20 % wider (same area): a wrong surrogate width."""

    name = "wider"
    inner: Surrogate

    def __call__(self, v, theta):
        return self.inner(theta + (v - theta) / 1.2, theta) / 1.2

    def cuda_body(self) -> str:  # pragma: no cover - never compiled
        raise NotImplementedError


class SignFlipNeuron(BPTTNeuron):
    def dynamics(self, current, state):
        spikes, state = super().dynamics(current, state)
        return _FlipGrad.apply(spikes), state


class OffByOneNeuron(BPTTNeuron):
    def dynamics(self, current, state):
        return super().dynamics(_ShiftGradInTime.apply(current), state)


class WrongWidthNeuron(BPTTNeuron):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.surrogate = _Wider(self.surrogate)


def _method(name: str, neuron_cls=BPTTNeuron, **defaults):
    class Broken(BPTT):
        def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
            self.check(spec)
            return neuron_cls(
                spec, shape, surrogate=surrogate, recurrent=recurrent, **{**defaults, **options}
            )

    Broken.name = name
    Broken.summary = f"deliberately broken: {name}"
    Broken.__name__ = Broken.__qualname__ = name.title().replace("-", "")
    return Broken()


BROKEN = {
    "sign-flip": _method("broken-sign-flip", SignFlipNeuron),
    # claims the reset gradient flows through (oracle bptt) but detaches it
    "dropped-reset": _method("broken-dropped-reset", BPTTNeuron, reset_grad="detached"),
    "off-by-one": _method("broken-off-by-one", OffByOneNeuron),
    "wrong-width": _method("broken-wrong-width", WrongWidthNeuron),
}


@hookimpl
def snnkit_register_gradients(register):
    for method in BROKEN.values():
        register(method)


# --- event methods --------------------------------------------------------------------------


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * ctx.factor, None


class _SlightlyOffNeuron(BPTTNeuron):
    """Every gradient through the spikes 1e-5 too large."""

    def dynamics(self, current, state):
        spikes, state = super().dynamics(current, state)
        return _ScaleGrad.apply(spikes, 1.0 + 1e-5), state


# an error float32's tolerance (1e-4) lets through and float64's (1e-10) does not
SLIGHTLY_OFF_RASTER = _method("broken-1e-5", _SlightlyOffNeuron)


def _event_method(name: str, factor: float):
    from snnkit.event_nets import EventOutput
    from snnkit.reference.exact_autograd import ExactAutograd, ExactEventNetwork

    class BrokenNetwork(ExactEventNetwork):
        def forward(self, inputs):
            out = super().forward(inputs)
            spikes = [_ScaleGrad.apply(t, factor) for t in out.spikes]
            return EventOutput(spikes, out.readout, out.duration)

    class BrokenEvents(ExactAutograd):
        def network(self, *args, **kwargs):
            net = super().network(*args, **kwargs)
            net.__class__ = BrokenNetwork
            return net

    BrokenEvents.name = name
    return BrokenEvents()


BROKEN_EVENTS = {
    "sign-flip": _event_method("broken-events-sign-flip", -1.0),
    "one-percent": _event_method("broken-events-one-percent", 1.01),
}
# wrong by 1e-8 relative: below what finite differences resolve, caught by agreement
SLIGHTLY_OFF_EVENTS = _event_method("broken-events-1e-8", 1.0 + 1e-8)
