"""Neuron specifications: parameters and the discrete-time dynamics every method simulates.

A spec is a frozen dataclass of physical parameters in time units (the unit of ``dt``,
milliseconds by convention). It holds no tensors. It owns its dynamics:

- :meth:`NeuronSpec.quantities` names the continuous parameters a layer turns into
  tensors (``trainable`` says which may become ``nn.Parameter``s);
- :meth:`NeuronSpec.coefficients` derives what one step needs from them (decays from
  time constants, ...), computed once per call, for fixed values in Python double;
- :meth:`NeuronSpec.initial_state` gives the zero state (a NamedTuple of ``[B, N]``
  tensors; a spiking neuron's state has a field ``a``, its spikes of the last step);
- :meth:`NeuronSpec.step` is one step in plain torch: ``(coefficients, state, x, spike)
  -> (spikes, new state)``. ``spike`` is supplied by the caller: the BPTT oracle passes a
  Heaviside with a surrogate derivative (and chooses whether the spike inside a reset
  carries gradient), so the same step defines the forward pass and the oracle gradient.

Methods read a spec to build their own kernels and declare which ``kind`` they implement.
The equations of the bundled neurons are in ``docs/neurons.md``. LIF, with ``v_t`` the
pre-reset membrane::

    i_t = beta * i_{t-1} + x_t                    (only with tau_syn; else i_t = x_t)
    v_t = alpha * vpost_{t-1} + i_t
    a_t = H(v_t - theta)                          (multi-spike: H(v_t - theta) * min(floor(v_t/theta), max))
    vpost_t = v_t - m * a_t        (reset "subtract", m = subtract or theta)
    vpost_t = v_t * (1 - a_t)      (reset "zero")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import torch

from snnkit.errors import SnnkitError

Reset = Literal["subtract", "zero"]
Value = float | torch.Tensor  # a fixed quantity (Python float) or a trainable tensor


class SpikeFn(Protocol):
    """What :meth:`NeuronSpec.step` calls to fire: supplied by whoever runs the step."""

    def __call__(
        self, v: torch.Tensor, theta: torch.Tensor, *, multi: bool = False, max_spikes=None
    ) -> torch.Tensor:
        """Spikes ``fire(v, theta, ...)``; differentiable callers give ds/dv = surrogate(v,
        theta) and ds/dtheta = -surrogate(v, theta)."""

    def reset(self, a: torch.Tensor) -> torch.Tensor:
        """The spikes as they enter a reset (``a``, or ``a`` detached from the gradient)."""


def fire(
    v: torch.Tensor, theta: torch.Tensor, max_spikes: int | None = None, multi: bool = False
) -> torch.Tensor:
    """a = H(v - theta) (inclusive), or H(v - theta) * min(floor(v/theta), max_spikes)."""
    fired = v >= theta
    if not multi:
        return fired.to(v.dtype)
    count = torch.floor(v / theta)
    if max_spikes is not None:
        count = torch.clamp(count, max=max_spikes)
    return torch.where(fired, count, torch.zeros_like(v))


class PlainSpike:
    """A :class:`SpikeFn` without gradient: simulates a neuron's step as it is defined."""

    def __call__(self, v, theta, *, multi=False, max_spikes=None):
        return fire(v, theta, max_spikes, multi)

    def reset(self, a):
        return a


def decay(dt: float, tau: Value) -> Value:
    """exp(-dt/tau), in Python double for a fixed tau (1 for an infinite one)."""
    return torch.exp(-dt / tau) if isinstance(tau, torch.Tensor) else math.exp(-dt / tau)


def _positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not math.isnan(value)
        and value > 0
    )
    if ok and math.isinf(value) and not allow_inf:
        ok = False
    if not ok:
        raise SnnkitError(f"{name} must be a positive number, got {value!r}")


def _finite(name: str, value: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise SnnkitError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class NeuronSpec:
    """Base of all neuron specs. ``kind`` is the registry name; ``spiking`` says if it fires.

    ``trainable`` lists the quantities (names in :meth:`quantities`) a layer may train.
    """

    kind: ClassVar[str] = ""
    spiking: ClassVar[bool] = True
    trainable: ClassVar[tuple[str, ...]] = ()
    State: ClassVar[type] = tuple
    dt: float = 1.0

    def __post_init__(self) -> None:
        _positive("dt", self.dt)

    # -- the dynamics (override in a concrete neuron) -----------------------------------
    def quantities(self) -> dict[str, float]:
        """The continuous parameters a layer holds as tensors, by name, with their values."""
        return {}

    def coefficients(self, q: dict[str, Value]) -> Any:
        """What :meth:`step` reads, derived from the quantities ``q`` (floats where fixed,
        tensors where trained). Fields may be floats, tensors or None."""
        return q

    def initial_state(self, like: torch.Tensor) -> Any:
        """The state before the first step: zeros shaped like ``like`` (``[B, N]``)."""
        return self.State(*(torch.zeros_like(like) for _ in self.State._fields))

    def step(self, c: Any, state: Any, x: torch.Tensor, spike: SpikeFn) -> tuple[torch.Tensor, Any]:
        """One step on input current ``x`` ``[B, N]``: returns (output, new state)."""
        raise NotImplementedError(f"neuron '{self.kind}' defines no step")

    # -- records ----------------------------------------------------------------------------
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


def own_kind(neuron: NeuronSpec) -> str | None:
    """``neuron``'s kind if its class declares one itself, else None: a subclass that does
    not name its own kind may have changed the dynamics, so no method may take it for its
    parent (methods support neurons by kind, never by ``isinstance``)."""
    return type(neuron).__dict__.get("kind") or None


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
        return decay(self.dt, self.tau_mem)

    @property
    def beta(self) -> float | None:
        """Synaptic-current decay per step, exp(-dt/tau_syn), or None without a synapse."""
        return None if self.tau_syn is None else decay(self.dt, self.tau_syn)

    def quantities(self) -> dict[str, float]:
        q = {"tau_mem": self.tau_mem}
        if self.tau_syn is not None:
            q["tau_syn"] = self.tau_syn
        return q


class LIFState(NamedTuple):
    """LIF state after a step: post-reset membrane ``v``, synaptic current ``i`` (None
    without a synaptic stage) and the step's spikes ``a``; each ``[B, N]``."""

    v: torch.Tensor
    i: torch.Tensor | None
    a: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, n: int, synaptic: bool, like: torch.Tensor) -> LIFState:
        z = like.new_zeros(batch, n)
        return cls(z, z.clone() if synaptic else None, z.clone())

    def detach(self) -> LIFState:
        return detach_state(self)


class LIFCoefficients(NamedTuple):
    """Per step: membrane decay, synaptic decay (None), threshold, reset amount ``m``."""

    alpha: Value
    beta: Value | None
    theta: Value
    m: Value


@dataclass(frozen=True)
class LIF(LeakyIntegrator):
    """Leaky integrate-and-fire neuron, optionally with a synaptic-current stage."""

    kind: ClassVar[str] = "lif"
    trainable: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn", "threshold")
    State: ClassVar[type] = LIFState
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

    def quantities(self) -> dict[str, float]:
        return {**super().quantities(), "threshold": self.threshold}

    def coefficients(self, q: dict[str, Value]) -> LIFCoefficients:
        theta = q["threshold"]
        return LIFCoefficients(
            alpha=decay(self.dt, q["tau_mem"]),
            beta=decay(self.dt, q["tau_syn"]) if "tau_syn" in q else None,
            theta=theta,
            m=theta if self.subtract is None else self.subtract,
        )

    def initial_state(self, like: torch.Tensor) -> LIFState:
        z = torch.zeros_like(like)
        return LIFState(z, z.clone() if self.tau_syn is not None else None, z.clone())

    def step(self, c: LIFCoefficients, state: LIFState, x, spike: SpikeFn):
        i = x if c.beta is None else c.beta * state.i + x
        v = c.alpha * state.v + i  # pre-reset membrane v_t
        a = spike(v, c.theta, multi=self.multi_spike, max_spikes=self.max_spikes)
        r = spike.reset(a)
        v = v - c.m * r if self.reset == "subtract" else v * (1 - r)
        return a, LIFState(v, i if c.beta is not None else None, a)


@dataclass(frozen=True)
class IF(LIF):
    """Integrate-and-fire: LIF without leak (alpha = 1)."""

    kind: ClassVar[str] = "if"
    trainable: ClassVar[tuple[str, ...]] = ("tau_syn", "threshold")
    tau_mem: float = math.inf

    def __post_init__(self) -> None:
        if not math.isinf(self.tau_mem):
            raise SnnkitError("an IF neuron has no leak; use --neuron lif to set tau_mem")
        super().__post_init__()


class LIState(NamedTuple):
    """Leaky-integrator state: membrane ``v`` and synaptic current ``i`` (None)."""

    v: torch.Tensor
    i: torch.Tensor | None


class LICoefficients(NamedTuple):
    alpha: Value
    beta: Value | None


@dataclass(frozen=True)
class LI(LeakyIntegrator):
    """Leaky integrator readout: no threshold, its output is the membrane trace."""

    kind: ClassVar[str] = "li"
    spiking: ClassVar[bool] = False
    trainable: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn")
    State: ClassVar[type] = LIState

    def coefficients(self, q: dict[str, Value]) -> LICoefficients:
        return LICoefficients(
            decay(self.dt, q["tau_mem"]),
            decay(self.dt, q["tau_syn"]) if "tau_syn" in q else None,
        )

    def initial_state(self, like: torch.Tensor) -> LIState:
        z = torch.zeros_like(like)
        return LIState(z, z.clone() if self.tau_syn is not None else None)

    def step(self, c: LICoefficients, state: LIState, x, spike: SpikeFn):
        i = x if c.beta is None else c.beta * state.i + x
        v = c.alpha * state.v + i
        return v, LIState(v, i if c.beta is not None else None)


class ALIFState(NamedTuple):
    """Adaptive LIF state: LIF's ``v``, ``i``, ``a`` and the adaptation trace ``b``."""

    v: torch.Tensor
    i: torch.Tensor | None
    a: torch.Tensor
    b: torch.Tensor


class ALIFCoefficients(NamedTuple):
    alpha: Value
    beta: Value | None
    theta: Value
    rho: Value
    adapt: Value


@dataclass(frozen=True)
class ALIF(LeakyIntegrator):
    """Adaptive LIF (Bellec et al. 2018): each spike raises the threshold, which relaxes back
    with ``tau_adapt``; the reset subtracts the threshold in force::

        b_t = rho * b_{t-1} + (1 - rho) * a_{t-1}        rho = exp(-dt/tau_adapt)
        theta_t = theta + adapt * b_t
        v_t = alpha * vpost_{t-1} + i_t;  a_t = H(v_t - theta_t);  vpost_t = v_t - theta_t a_t
    """

    kind: ClassVar[str] = "alif"
    trainable: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn", "threshold", "tau_adapt")
    State: ClassVar[type] = ALIFState
    tau_mem: float = 20.0
    threshold: float = 1.0
    tau_adapt: float = 200.0
    adapt: float = 1.8

    def __post_init__(self) -> None:
        super().__post_init__()
        if math.isinf(self.tau_mem):
            raise SnnkitError("alif needs a finite tau_mem")
        _positive("threshold", self.threshold)
        _positive("tau_adapt", self.tau_adapt)
        _finite("adapt", self.adapt)

    def quantities(self) -> dict[str, float]:
        return {**super().quantities(), "threshold": self.threshold, "tau_adapt": self.tau_adapt}

    def coefficients(self, q: dict[str, Value]) -> ALIFCoefficients:
        return ALIFCoefficients(
            alpha=decay(self.dt, q["tau_mem"]),
            beta=decay(self.dt, q["tau_syn"]) if "tau_syn" in q else None,
            theta=q["threshold"],
            rho=decay(self.dt, q["tau_adapt"]),
            adapt=self.adapt,
        )

    def initial_state(self, like: torch.Tensor) -> ALIFState:
        z = torch.zeros_like(like)
        return ALIFState(z, z.clone() if self.tau_syn is not None else None, z.clone(), z.clone())

    def step(self, c: ALIFCoefficients, state: ALIFState, x, spike: SpikeFn):
        i = x if c.beta is None else c.beta * state.i + x
        b = c.rho * state.b + (1 - c.rho) * state.a
        theta = c.theta + c.adapt * b
        v = c.alpha * state.v + i
        a = spike(v, theta)
        v = v - theta * spike.reset(a)
        return a, ALIFState(v, i if c.beta is not None else None, a, b)


class RFState(NamedTuple):
    """Resonate-and-fire state: post-reset real part ``u``, imaginary part ``w``, spikes ``a``."""

    u: torch.Tensor
    w: torch.Tensor
    a: torch.Tensor


class RFCoefficients(NamedTuple):
    rc: Value  # exp(-dt/tau_mem) cos(omega dt)
    rs: Value  # exp(-dt/tau_mem) sin(omega dt)
    theta: Value


def _trig(fn: str, x: Value) -> Value:
    return getattr(torch, fn)(x) if isinstance(x, torch.Tensor) else getattr(math, fn)(x)


@dataclass(frozen=True)
class RF(NeuronSpec):
    """Resonate-and-fire (Izhikevich 2001): a damped oscillator ``z = u + i w`` driven on its
    real part, discretised exactly; it fires when ``u`` reaches the threshold, and the reset
    subtracts the threshold from ``u``::

        z_t = exp((-1/tau_mem + i omega) dt) * zpost_{t-1} + x_t
        a_t = H(u_t - theta);   upost_t = u_t - theta a_t

    With ``omega = 0`` it is LIF (no synaptic stage). ``omega`` is in radians per time unit.
    """

    kind: ClassVar[str] = "rf"
    trainable: ClassVar[tuple[str, ...]] = ("tau_mem", "omega", "threshold")
    State: ClassVar[type] = RFState
    tau_mem: float = 20.0
    omega: float = 0.25
    threshold: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("tau_mem", self.tau_mem)
        _finite("omega", self.omega)
        _positive("threshold", self.threshold)

    def quantities(self) -> dict[str, float]:
        return {"tau_mem": self.tau_mem, "omega": self.omega, "threshold": self.threshold}

    def coefficients(self, q: dict[str, Value]) -> RFCoefficients:
        r, angle = decay(self.dt, q["tau_mem"]), q["omega"] * self.dt
        return RFCoefficients(r * _trig("cos", angle), r * _trig("sin", angle), q["threshold"])

    def step(self, c: RFCoefficients, state: RFState, x, spike: SpikeFn):
        u = c.rc * state.u - c.rs * state.w + x
        w = c.rs * state.u + c.rc * state.w
        a = spike(u, c.theta)
        return a, RFState(u - c.theta * spike.reset(a), w, a)


def detach_state(state):
    """``state`` (a NamedTuple of tensors or None) with every tensor detached."""
    return type(state)(*(None if s is None else s.detach() for s in state))


BUILTIN_NEURONS: tuple[type[NeuronSpec], ...] = (LIF, IF, LI, ALIF, RF)
