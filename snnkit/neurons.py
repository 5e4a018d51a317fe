"""Neuron specifications: the dynamics every gradient method must simulate (METHODS.md §1).

A spec is a frozen dataclass of physical parameters in time units (the same unit as
``dt``, milliseconds by convention). It holds no tensors and no method-specific code:
gradient methods read it to build their layers, and ``supports()`` checks it.

Discrete-time LIF, with ``v_t`` the pre-reset membrane::

    i_t = beta * i_{t-1} + x_t                    (only with tau_syn; else i_t = x_t)
    v_t = alpha * vpost_{t-1} + i_t
    a_t = H(v_t - theta)                          (multi-spike: H(v_t - theta) * min(floor(v_t/theta), max))
    vpost_t = v_t - m * a_t        (reset "subtract", m = subtract or theta)
    vpost_t = v_t * (1 - a_t)      (reset "zero")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import ClassVar, Literal

from snnkit.errors import SnnkitError

Reset = Literal["subtract", "zero"]


def _positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not math.isnan(value) and value > 0
    if ok and math.isinf(value) and not allow_inf:
        ok = False
    if not ok:
        raise SnnkitError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class NeuronSpec:
    """Base of all neuron specs. ``kind`` is the registry name; ``spiking`` says if it fires."""

    kind: ClassVar[str] = ""
    spiking: ClassVar[bool] = True
    dt: float = 1.0

    def __post_init__(self) -> None:
        _positive("dt", self.dt)

    def replace(self, **changes) -> NeuronSpec:
        """A copy with ``changes`` applied (validated like a new spec)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            known = ", ".join(f.name for f in fields(self))
            raise SnnkitError(
                f"neuron '{self.kind}' has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters are: {known}"
            )
        return replace(self, **changes)

    def describe(self) -> str:
        """Short human-readable form, e.g. ``lif(tau_mem=10, threshold=1)``."""
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class LeakyIntegrator(NeuronSpec):
    """Membrane (and optional synaptic current) that decays between steps."""

    tau_mem: float = 10.0
    tau_syn: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("tau_mem", self.tau_mem, allow_inf=True)
        if self.tau_syn is not None:
            _positive("tau_syn", self.tau_syn)

    @property
    def alpha(self) -> float:
        """Membrane decay per step, exp(-dt/tau_mem) (1 without leak)."""
        return math.exp(-self.dt / self.tau_mem)

    @property
    def beta(self) -> float | None:
        """Synaptic-current decay per step, exp(-dt/tau_syn), or None without a synapse."""
        return None if self.tau_syn is None else math.exp(-self.dt / self.tau_syn)


@dataclass(frozen=True)
class LIF(LeakyIntegrator):
    """Leaky integrate-and-fire neuron, optionally with a synaptic-current stage."""

    kind: ClassVar[str] = "lif"
    threshold: float = 1.0
    reset: Reset = "subtract"
    subtract: float | None = None
    multi_spike: bool = False
    max_spikes: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("threshold", self.threshold)
        if self.reset not in ("subtract", "zero"):
            raise SnnkitError(f"unknown reset {self.reset!r}; use 'subtract' or 'zero'")
        if self.subtract is not None:
            _positive("subtract", self.subtract)
            if self.reset != "subtract":
                raise SnnkitError("subtract= only applies to reset='subtract'")
        if self.max_spikes is not None:
            if not self.multi_spike:
                raise SnnkitError("max_spikes needs multi_spike=True")
            if not isinstance(self.max_spikes, int) or self.max_spikes < 1:
                raise SnnkitError(f"max_spikes must be an integer >= 1, got {self.max_spikes!r}")
        if self.multi_spike and self.reset == "zero":
            raise SnnkitError(
                "multi_spike needs reset='subtract' (a reset to zero cannot remove several spikes)"
            )

    @property
    def reset_amount(self) -> float:
        """m, what a spike subtracts from the membrane (reset 'subtract')."""
        return self.threshold if self.subtract is None else self.subtract


@dataclass(frozen=True)
class IF(LIF):
    """Integrate-and-fire: LIF without leak (alpha = 1)."""

    kind: ClassVar[str] = "if"
    tau_mem: float = math.inf

    def __post_init__(self) -> None:
        if not math.isinf(self.tau_mem):
            raise SnnkitError("an IF neuron has no leak; use --neuron lif to set tau_mem")
        super().__post_init__()


@dataclass(frozen=True)
class LI(LeakyIntegrator):
    """Leaky integrator readout: no threshold, its output is the membrane trace."""

    kind: ClassVar[str] = "li"
    spiking: ClassVar[bool] = False


BUILTIN_NEURONS: tuple[type[NeuronSpec], ...] = (LIF, IF, LI)
