"""What the peer adapters share: a snnkit neuron module around another library's LIF.

A peer neuron is a :class:`~snnkit.nn.SpikingNeuron` (so the core builds layers, networks,
the conformance suite and the benchmark from it, like any method's) whose dynamics are
the peer library's own module, called the way that library's documentation shows. The
peer module is *not* a submodule: the population's state dict is exactly the oracle's
(``params.*``), and the peer module is rebuilt for each dtype and device it meets.

Two conventions (option ``convention``):

``"snnkit"`` (default)
    the peer is configured to snnkit's LIF (``docs/neurons.md``): decay exp(-dt/tau_mem),
    threshold, reset mode, snnkit's surrogate through the library's own surrogate hook.
    What a library cannot express is refused with the reason (``supports``) or, for the
    surrogate, stated by :attr:`PeerNeuron.notes`.
``"library"``
    the library's defaults for everything but tau_mem and the threshold (its surrogate,
    reset, input scaling): how its users run it. For speed comparisons only: it is a
    different model, so never compared with the oracle.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import torch

from snnkit import GradientMethod, SnnkitError
from snnkit.neurons import LIFState
from snnkit.nn import SpikingNeuron
from snnkit.surrogates import Surrogate

CONVENTIONS = ("snnkit", "library")


def import_library(module: str, package: str):
    """Import a peer library or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SnnkitError(
            f"--grad {package} needs the {package} library ({exc}); "
            f"pip install 'snnkit[peers]' (or pip install {package})"
        ) from None


def as_float64(value: float) -> torch.Tensor:
    """``value`` as a float64 tensor: a library that turns Python floats into float32
    tensors keeps it exact until the module is cast to the population's dtype."""
    return torch.tensor(value, dtype=torch.float64)


class HeavisideSurrogate(torch.autograd.Function):
    """H(x) (inclusive, in x's dtype) forward; ``surrogate(x + theta, theta)`` backward.

    ``x`` is the membrane minus the threshold, what spikingjelly's and snntorch's surrogate
    hooks receive."""

    @staticmethod
    def forward(ctx, x, theta, surrogate):
        ctx.save_for_backward(x)
        ctx.theta, ctx.surrogate = theta, surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate(x + ctx.theta, ctx.theta), None, None


class PeerNeuron(SpikingNeuron):
    """LIF neurons simulated by a peer library (subclasses: :meth:`build`, :meth:`simulate`).

    Fixed neuron quantities only (a peer's trained time constants and thresholds are
    parameters of its own modules, which the oracle's layout does not have), no recurrent
    weight (each library wires recurrence differently).
    """

    library: ClassVar[str] = ""

    def __init__(
        self,
        spec,
        shape=None,
        *,
        surrogate: Surrogate | None = None,
        recurrent: bool = False,
        convention: str = "snnkit",
        **options,
    ) -> None:
        if recurrent:
            raise SnnkitError(f"--grad {self.library}: recurrent populations are not adapted")
        if options.get("train") or options.get("train_tau") or options.get("train_threshold"):
            raise SnnkitError(
                f"--grad {self.library} runs fixed tau and threshold (trained ones would be "
                "parameters of the library's module, not snnkit's)"
            )
        if convention not in CONVENTIONS:
            raise SnnkitError(f"convention={convention!r}: use one of {', '.join(CONVENTIONS)}")
        for key in ("train", "train_tau", "train_threshold"):  # all falsy here
            options.pop(key, None)
        super().__init__(spec, shape, surrogate=surrogate, **options)
        self.convention = convention
        self.notes: list[str] = []
        self._peers: dict[tuple, Any] = {}

    def peer(self, like: torch.Tensor):
        """The library's module for ``like``'s dtype and device (built once per pair)."""
        key = (like.dtype, like.device)
        if key not in self._peers:
            self._peers[key] = self.build(like)
        return self._peers[key]

    def build(self, like: torch.Tensor):
        """The library's neuron module, configured for ``self.neuron`` and ``self.convention``,
        in ``like``'s dtype and on its device."""
        raise NotImplementedError

    def simulate(self, current, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """Spikes ``[T, B, N]`` and the LIF state after the last step, from ``state``."""
        raise NotImplementedError

    def dynamics(self, current, state):
        spikes, state = self.simulate(current, state)
        # several libraries return float32 spikes whatever the input dtype (`.float()`)
        return spikes.to(current.dtype), state

    @property
    def alpha(self) -> float:
        return self.neuron.alpha

    @property
    def beta(self) -> float | None:
        return self.neuron.beta

    @property
    def theta(self) -> float:
        return self.neuron.threshold

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.library} ({self.convention} convention)"


def synaptic_current(current: torch.Tensor, i0: torch.Tensor, beta: float) -> torch.Tensor:
    """i_t = beta * i_{t-1} + x_t over ``current`` ``[T, B, N]`` (for libraries whose LIF has
    no synaptic stage of snnkit's form): a linear filter, differentiated by autograd."""
    out, i = [], i0
    for x in current.unbind(0):
        i = beta * i + x
        out.append(i)
    return torch.stack(out)


class PeerMethod(GradientMethod):
    """A peer library's LIF registered as a gradient method (see the module docstring)."""

    representation = "raster"
    exact = True
    neurons = ("lif",)
    devices = ("cpu", "cuda")
    neuron_class: ClassVar[type[PeerNeuron]]
    # what the library can express of snnkit's LIF, checked by supports()
    resets: ClassVar[tuple[str, ...]] = ("subtract", "zero")
    multi_spike: ClassVar[bool] = False
    custom_subtract: ClassVar[bool] = False

    def supports(self, neuron):
        reason = super().supports(neuron)
        if reason is not None:
            return reason
        if neuron.reset not in self.resets:
            return f"{self.name}'s LIF has no reset '{neuron.reset}' in snnkit's form"
        if neuron.multi_spike and not self.multi_spike:
            return f"{self.name}'s LIF emits one spike per step (no multi_spike)"
        if neuron.subtract is not None and not self.custom_subtract:
            return f"{self.name}'s LIF subtracts its threshold on a spike (no subtract=)"
        return None

    def neuron(self, spec, shape=None, *, surrogate=None, recurrent=False, **options):
        self.check(spec)
        return self.neuron_class(spec, shape, surrogate=surrogate, recurrent=recurrent, **options)
