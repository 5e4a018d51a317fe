"""The exact-events oracle: a float64 continuous-time simulator of current-based LIF networks.

Ground truth for event-based gradient methods (EventProp, EEST: docs/neurons.md §6,
docs/methods/eventprop.md and eest.md). Written for clarity, independent of every plugin.
Per neuron (time in ms)::

    tau_m dV/dt = -V + I,   tau_s dI/dt = -I

An arriving spike from ``j`` adds ``w_ij`` to ``I_i``. When ``V`` reaches ``theta`` from below
the neuron spikes and resets (``"zero"``: ``V -> v_reset``; ``"subtract"``: ``V -> V - theta``);
``I`` is untouched by the neuron's own spike. (Since ``V = theta`` exactly at a crossing,
``"subtract"`` equals ``"zero"`` with ``v_reset = 0`` up to rounding; both are offered.) ``V = I = 0`` at ``t = 0``; the window is
``[0, duration)``. Between events, with ``(V0, I0)`` at the last event and ``s`` the time since::

    I(s) = I0 exp(-s/tau_s)
    V(s) = V0 exp(-s/tau_m) + I0 kappa (exp(-s/tau_s) - exp(-s/tau_m)),  kappa = tau_s/(tau_s - tau_m)
    V(s) = (V0 + I0 s/tau) exp(-s/tau)                                  (tau_m = tau_s = tau)

(the first is ``(V0 - A) e^{-s/tau_m} + A e^{-s/tau_s}`` with ``A = kappa I0``; the difference
of exponentials is evaluated with ``expm1``, so early times keep full relative precision).

**Spike times.** Within each inter-event window the first upward crossing of ``theta`` is
found on detached floats (:meth:`Kernel.first_crossing`): closed forms for ``tau_m = 2 tau_s``
(a quadratic in ``exp(-s/tau_m)``) and ``tau_m = tau_s`` (Lambert W, branch 0), each followed
by one residual-reducing Newton polish step; otherwise a safeguarded Newton-bisection on the
monotone pieces left and right of the single extremum.
The returned time is then made differentiable by one Newton step taken in torch from the
detached root ``t0``: ``t = t0 - (V(t0) - theta)/V'(t0)`` with ``V(t0)`` built from the
differentiable state at the last event. Its value is ``t0`` (to rounding) and its autograd
derivative is the implicit-function one, ``-(dV/dp)/(dV/dt)``, for weights and input times.
All state updates are torch ops, so later spikes depend on earlier spike times through autograd.

**Event order.** Each layer processes its events (arrivals from the layer below, its own
spikes, and, if recurrent, its own spikes arriving back) in time order. An arrival at the same
time as a threshold crossing is processed first; the crossing is then found again at zero delay.
A neuron whose detached ``V`` is already ``>= theta`` at an event (possible only by rounding
at coincident events) fires at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from snnkit.errors import SnnkitError
from snnkit.events import Events

__all__ = [
    "ExactLayer",
    "ExactNeuron",
    "ExactResult",
    "Kernel",
    "LIReadout",
    "LayerTrace",
    "TraceWindow",
    "lambert_w0",
    "simulate",
]

F64 = torch.float64
Number = float | torch.Tensor
CrossingMethod = Literal["auto", "closed", "bracket"]


def _exp(x: Number) -> Number:
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


def _one_minus_exp(x: Number) -> Number:
    """``1 - exp(-x)`` without cancellation for small ``x``."""
    return -torch.expm1(-x) if isinstance(x, torch.Tensor) else -math.expm1(-x)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_tau(name: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise SnnkitError(f"{name} must be a positive finite number of ms, got {value!r}")
    return float(value)


def lambert_w0(x: float) -> float:
    """Principal branch ``W0`` of the Lambert W function (``w e^w = x``, ``w >= -1``), x >= -1/e.

    Series about the branch point or a log/linear start, then Halley iterations.
    """
    if not x >= -1.0 / math.e:
        if x > -1.0 / math.e - 1e-15:  # rounding of the branch point itself
            return -1.0
        raise SnnkitError(f"lambert_w0 is real only for x >= -1/e, got {x!r}")
    if x == 0.0:
        return 0.0
    p2 = 2.0 * (math.e * x + 1.0)
    if p2 < 0.25:  # near the branch point: w = -1 + p - p^2/3 + 11 p^3/72 - ...
        p = math.sqrt(max(p2, 0.0))
        w = -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p**3
        if p < 1e-6:
            return w
    elif x < 3.0:
        w = math.log1p(x) if x > -0.25 else x
    else:
        lx = math.log(x)
        w = lx - math.log(lx)
    for _ in range(64):
        ew = math.exp(w)
        f = w * ew - x
        wp1 = w + 1.0
        if wp1 == 0.0:
            break
        step = f / (ew * wp1 - (w + 2.0) * f / (2.0 * wp1))
        w -= step
        if abs(step) <= 2.0 * math.ulp(w) + 1e-300:
            break
    return w


@dataclass(frozen=True)
class Kernel:
    """The closed-form solution between events for one pair of time constants.

    Methods accept floats (the detached root search) or tensors (differentiable updates).
    """

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

    @property
    def has_closed_form(self) -> bool:
        """A closed-form crossing exists: ``tau_mem = 2 tau_syn`` or ``tau_mem = tau_syn``."""
        return self.tau_mem == 2.0 * self.tau_syn or self.equal_taus

    def current(self, i0: Number, s: Number) -> Number:
        """``I(s)`` from ``I0``."""
        return i0 * _exp(-s / self.tau_syn)

    def voltage(self, v0: Number, i0: Number, s: Number) -> Number:
        """``V(s)`` from ``(V0, I0)`` at ``s = 0``."""
        em = _exp(-s / self.tau_mem)
        if self.equal_taus:
            return (v0 + i0 * s / self.tau_mem) * em
        return v0 * em + i0 * self.kappa * self._exp_difference(s, em)

    def _exp_difference(self, s: Number, em: Number) -> Number:
        """``exp(-s/tau_syn) - exp(-s/tau_mem)`` without cancellation at small ``s``."""
        expm1 = torch.expm1 if isinstance(s, torch.Tensor) else math.expm1
        if self.tau_syn < self.tau_mem:
            return em * expm1(-s * (1.0 / self.tau_syn - 1.0 / self.tau_mem))
        return -_exp(-s / self.tau_syn) * expm1(-s * (1.0 / self.tau_mem - 1.0 / self.tau_syn))

    def slope(self, v0: Number, i0: Number, s: Number) -> Number:
        """``dV/ds = (I(s) - V(s)) / tau_mem``."""
        return (self.current(i0, s) - self.voltage(v0, i0, s)) / self.tau_mem

    def advance(self, v0: Number, i0: Number, s: Number) -> tuple[Number, Number]:
        """State ``(V, I)`` after ``s`` ms without events."""
        return self.voltage(v0, i0, s), self.current(i0, s)

    def psp_peak(self) -> float:
        """Peak of ``V`` after a unit current jump from rest (scale for weight initialisation)."""
        return float(self.voltage(0.0, 1.0, self.extremum(0.0, 1.0)))

    def extremum(self, v0: float, i0: float) -> float | None:
        """The ``s`` (possibly negative) where ``dV/ds = 0``, or None if V is monotone for all s."""
        if i0 == 0.0:
            return None
        if self.equal_taus:
            return self.tau_mem * (1.0 - v0 / i0)
        k = self.kappa
        ratio = (v0 - i0 * k) / (i0 * (1.0 - k))
        if not ratio > 0.0 or not math.isfinite(ratio):
            return None
        return math.log(ratio) / (1.0 / self.tau_mem - 1.0 / self.tau_syn)

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
        if self.equal_taus:
            # int_0^L s e^{-r s} ds = (1 - e^{-rL}(1 + rL)) / r^2
            first = (_one_minus_exp(rm * length) - _exp(-rm * length) * rm * length) / rm**2
            return v0 * k(rm) + i0 / self.tau_mem * first
        rs = 1.0 / scale + 1.0 / self.tau_syn
        return v0 * k(rm) + i0 * self.kappa * (k(rs) - k(rm))

    # ---- threshold crossings (floats) ------------------------------------------------------

    def first_crossing(
        self,
        v0: float,
        i0: float,
        theta: float,
        window: float,
        method: CrossingMethod = "auto",
    ) -> float | None:
        """First ``s`` in ``(0, window]`` where V reaches ``theta`` from below, else None.

        ``method``: ``"closed"`` (closed form; only when :attr:`has_closed_form`),
        ``"bracket"`` (root finder), ``"auto"`` (closed form when available). Returns ``0.0``
        if ``v0 >= theta`` already.
        """
        if v0 >= theta:
            return 0.0
        if not window > 0.0:
            return None
        if method == "auto":
            method = "closed" if self.has_closed_form else "bracket"
        if method == "bracket":
            return self._bracketed_crossing(v0, i0, theta, window)
        if method != "closed":
            raise SnnkitError(
                f"unknown crossing method {method!r}; use 'auto', 'closed' or 'bracket'"
            )
        if self.equal_taus:
            s = self._lambert_crossing(v0, i0, theta)
        elif self.tau_mem == 2.0 * self.tau_syn:
            s = self._quadratic_crossing(v0, i0, theta)
        else:
            raise SnnkitError(
                f"no closed-form crossing for tau_mem={self.tau_mem}, tau_syn={self.tau_syn}; "
                "it exists only for tau_mem = 2 tau_syn or tau_mem = tau_syn, use 'bracket'"
            )
        if s is None or not 0.0 < s <= window:
            return None
        return self._polish(v0, i0, theta, s)

    def _polish(self, v0: float, i0: float, theta: float, s: float) -> float:
        """One Newton step on ``V(s) = theta``, kept only if it lowers the residual.

        Closed forms lose relative accuracy in ``s`` when the crossing is very early
        (``exp(-s/tau)`` is close to 1); the step restores it.
        """
        f = self.voltage(v0, i0, s) - theta
        d = self.slope(v0, i0, s)
        if f == 0.0 or not d > 0.0:
            return s
        t = s - f / d
        return t if t > 0.0 and abs(self.voltage(v0, i0, t) - theta) < abs(f) else s

    def _quadratic_crossing(self, v0: float, i0: float, theta: float) -> float | None:
        # tau_m = 2 tau_s, kappa = -1, z = e^{-s/tau_m}: V = (v0 + i0) z - i0 z^2 = theta.
        # With V(z=1) < theta the first crossing (z falling from 1) is the larger root below 1,
        # z+ = (b + sqrt(b^2 - 4 i0 theta)) / (2 i0), b = v0 + i0 (a sum of positives: stable).
        # It exists only for i0 > 0 and b > 0 (both roots are positive iff b > 0).
        b = v0 + i0
        if i0 <= 0.0 or b <= 0.0:
            return None
        disc = b * b - 4.0 * i0 * theta
        if disc < 0.0:
            return None
        # z - 1 in a cancellation-free form: rationalised when V rises at s = 0 (i0 > v0)
        # since (i0 - v0)^2 - disc = 4 i0 (theta - v0); directly otherwise.
        root = math.sqrt(disc)
        if i0 > v0:
            z_minus_1 = -2.0 * (theta - v0) / (root + (i0 - v0))
        else:
            z_minus_1 = ((v0 - i0) + root) / (2.0 * i0)
        if not z_minus_1 < 0.0:
            return None
        return -self.tau_mem * math.log1p(z_minus_1)

    def _lambert_crossing(self, v0: float, i0: float, theta: float) -> float | None:
        # tau_m = tau_s = tau, u = s/tau: (v0 + i0 u) e^{-u} = theta. With w = -(u + v0/i0):
        # w e^w = x = -(theta/i0) e^{-v0/i0}; the first crossing (before the maximum at
        # w = -1) is the principal branch: u = -W0(x) - v0/i0.
        if i0 <= 0.0:
            return None
        a = -v0 / i0
        if a > 700.0:  # x -> -inf: the maximum is far below theta
            return None
        x = -(theta / i0) * math.exp(a)
        if x < -1.0 / math.e:
            return None
        u = -lambert_w0(x) + a
        return self.tau_mem * u if u > 0.0 else None

    def _bracketed_crossing(self, v0: float, i0: float, theta: float, window: float):
        # V is a sum of two exponentials: at most one extremum. Split there; the first
        # monotone piece with f(lo) < 0 <= f(hi) holds the first crossing.
        cuts = [0.0]
        s_ext = self.extremum(v0, i0)
        if s_ext is not None and 0.0 < s_ext < window:
            cuts.append(s_ext)
        cuts.append(window)
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            flo = self.voltage(v0, i0, lo) - theta
            fhi = self.voltage(v0, i0, hi) - theta
            if flo < 0.0 <= fhi:
                return self._solve(v0, i0, theta, lo, hi, flo, fhi)
        return None

    def _solve(self, v0, i0, theta, lo, hi, flo, fhi) -> float:
        """Safeguarded Newton on an increasing bracket ``f(lo) < 0 <= f(hi)``, to ~1 ulp."""
        x = lo + (hi - lo) * (-flo) / (fhi - flo)  # regula falsi start
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
        for _ in range(300):
            fx = self.voltage(v0, i0, x) - theta
            if fx == 0.0:
                return x
            if fx < 0.0:
                lo, flo = x, fx
            else:
                hi, fhi = x, fx
            d = self.slope(v0, i0, x)
            nx = x - fx / d if d > 0.0 else math.nan
            if not lo < nx < hi:
                nx = 0.5 * (lo + hi)
            if nx == x or hi - lo <= 2.0 * math.ulp(hi):
                break
            x = nx
        return lo if abs(flo) < abs(fhi) else hi


@dataclass(frozen=True)
class ExactNeuron:
    """Current-based LIF parameters shared by all spiking layers (ms)."""

    tau_mem: float = 10.0
    tau_syn: float = 5.0
    threshold: float = 1.0
    reset: str = "zero"
    v_reset: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau_mem", _check_tau("ExactNeuron.tau_mem", self.tau_mem))
        object.__setattr__(self, "tau_syn", _check_tau("ExactNeuron.tau_syn", self.tau_syn))
        theta = self.threshold
        if not _is_number(theta) or not math.isfinite(theta) or theta <= 0:
            raise SnnkitError(
                f"ExactNeuron.threshold must be a positive finite number, got {theta!r}; "
                "spikes are upward crossings of a positive threshold"
            )
        if self.reset not in ("zero", "subtract"):
            raise SnnkitError(f"ExactNeuron.reset must be 'zero' or 'subtract', got {self.reset!r}")
        vr = self.v_reset
        if not _is_number(vr) or not math.isfinite(vr) or vr >= theta:
            raise SnnkitError(
                f"ExactNeuron.v_reset must be a finite number below threshold={theta}, got "
                f"{vr!r}; a reset at or above threshold would spike again at once"
            )

    @property
    def kernel(self) -> Kernel:
        """The between-event solution for these time constants."""
        return Kernel(self.tau_mem, self.tau_syn)


@dataclass
class ExactLayer:
    """Weights of one layer: ``weight`` [out, in]; ``recurrent_weight`` [out, out] or None.

    A spike of neuron ``m`` at ``t`` adds ``recurrent_weight[n, m]`` to ``I_n`` at ``t``
    (``n == m`` included).
    """

    weight: torch.Tensor
    recurrent_weight: torch.Tensor | None = None

    def __post_init__(self) -> None:
        w = self.weight
        if not isinstance(w, torch.Tensor) or w.ndim != 2 or not w.is_floating_point():
            what = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise SnnkitError(
                f"ExactLayer.weight must be a floating tensor [out, in], got {what}; "
                "pass e.g. torch.randn(out, in, dtype=torch.float64)"
            )
        r = self.recurrent_weight
        if r is not None:
            n = w.shape[0]
            if not isinstance(r, torch.Tensor) or not r.is_floating_point() or r.shape != (n, n):
                what = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
                raise SnnkitError(
                    f"ExactLayer.recurrent_weight must be a floating tensor [{n}, {n}] "
                    f"(out x out), got {what}; pass None for a feed-forward layer"
                )


@dataclass(frozen=True)
class TraceWindow:
    """Detached state of a layer on ``[start, end)`` between two consecutive layer events.

    ``v0``/``i0`` hold every neuron's state at ``start`` (after that event); ``spiker`` is the
    neuron whose spike ends the window, or -1 (an arrival or the end of the simulation).
    """

    start: float
    end: float
    v0: tuple[float, ...]
    i0: tuple[float, ...]
    spiker: int


@dataclass(frozen=True)
class LayerTrace:
    """Every inter-event window of one layer, per sample (for the criticality screen)."""

    recurrent: bool
    windows: list[list[TraceWindow]]


@dataclass
class LIReadout:
    """Non-spiking leaky integrators fed by ``times`` with jumps ``jumps`` (exact, differentiable).

    ``times`` [B, E] sorted arrival times (padding: ``duration`` with zero jumps);
    ``jumps`` [B, E, C] the current added to each readout neuron by each arrival. Since the
    readout is linear, ``V(t) = sum_e jumps_e K(t - t_e)`` with ``K`` the response to a unit
    current jump.
    """

    times: torch.Tensor
    jumps: torch.Tensor
    kernel: Kernel
    duration: float

    def voltage(self, t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
        """``V`` at the times ``t`` [M] (in ``[0, duration]``), as [B, C, M]."""
        t = torch.as_tensor(t, dtype=F64).reshape(-1)
        lo, hi = (float(t.detach().min()), float(t.detach().max())) if t.numel() else (0, 0)
        if lo < 0 or hi > self.duration:
            raise SnnkitError(
                f"LIReadout.voltage: times must lie in [0, duration={self.duration}], got "
                f"[{lo}, {hi}]; the readout is defined on the window only"
            )
        s = t[None, None, :] - self.times[:, :, None]  # [B, E, M]
        after = s >= 0
        response = self.kernel.voltage(0.0, 1.0, s.clamp(min=0.0)) * after
        return torch.einsum("bem,bec->bcm", response, self.jumps)

    def integral(self) -> torch.Tensor:
        """``int_0^T V dt``, [B, C]."""
        per_event = self.kernel.integral(0.0, 1.0, self.duration - self.times)
        return torch.einsum("be,bec->bc", per_event, self.jumps)

    def integral_exp(self, scale: float | None = None) -> torch.Tensor:
        """``int_0^T exp(-t/scale) V dt`` (``scale`` defaults to ``duration``), [B, C]."""
        scale = self.duration if scale is None else _check_tau("scale", scale)
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
        earlier = torch.ones(E, E, dtype=torch.bool).tril()  # j <= e in sorted order
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
        with torch.no_grad():  # interior stationary point of each segment (detached)
            k = self.kernel
            if k.equal_taus:
                s_star = k.tau_mem * (1.0 - v0 / i0)
            else:
                ratio = (v0 - i0 * k.kappa) / (i0 * (1.0 - k.kappa))
                s_star = torch.log(ratio) / (1.0 / k.tau_mem - 1.0 / k.tau_syn)
            inside = torch.isfinite(s_star) & (s_star > 0) & (s_star < length)
            s_star = torch.where(inside, s_star, torch.zeros_like(s_star))
        interior = torch.where(inside, k.voltage(v0, i0, s_star), -math.inf)
        candidates = torch.cat(
            [
                torch.zeros_like(v0[:, :1]),  # V(0) = 0
                v0,
                k.voltage(v0, i0, length),
                interior,
            ],
            dim=1,
        )
        return candidates.amax(dim=1)


@dataclass
class ExactResult:
    """Output of :func:`simulate`.

    ``spikes[l]``: layer ``l``'s spike times (differentiable, +inf padded).
    ``currents_at_spikes[l]``: ``I(t_k)`` just before each spike (before any recurrent jump at
    ``t_k``), same shape, NaN where no spike; ``I - theta = tau_m dV/dt`` at the crossing.
    ``readout``: the LI readout if one was requested. ``traces``: detached per-window states
    for :func:`snnkit.reference.finite_differences.critical_points`.
    """

    spikes: list[Events]
    currents_at_spikes: list[torch.Tensor]
    readout: LIReadout | None = None
    traces: list[LayerTrace] = field(default_factory=list)

    def spike_counts(self) -> torch.Tensor:
        """All spike counts of all layers, flattened into one long tensor."""
        if not self.spikes:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([e.counts().reshape(-1) for e in self.spikes])


def _arrivals(times: torch.Tensor) -> tuple[torch.Tensor, list[int], list[float]]:
    """Finite spike times of one sample [N, K] in time order: (times, sources, float times)."""
    finite = torch.isfinite(times)
    sources, _ = finite.nonzero(as_tuple=True)
    values = times[finite]
    order = torch.argsort(values.detach(), stable=True)
    values = values[order]
    return values, sources[order].tolist(), values.detach().tolist()


def _run_layer(
    neuron: ExactNeuron,
    weight: torch.Tensor,
    recurrent: torch.Tensor | None,
    pre_times: torch.Tensor,
    duration: float,
    max_spikes: int,
    name: str,
) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], list[TraceWindow]]:
    """Simulate one layer for one sample; returns per-neuron spike times, currents, windows."""
    kernel, theta = neuron.kernel, neuron.threshold
    N = weight.shape[0]
    arrivals, sources, arrivals_f = _arrivals(pre_times)
    onehot = torch.eye(N, dtype=torch.bool)
    v = torch.zeros(N, dtype=F64)
    i = torch.zeros(N, dtype=F64)
    t_cur, tf = torch.zeros((), dtype=F64), 0.0
    spikes: list[list[torch.Tensor]] = [[] for _ in range(N)]
    currents: list[list[torch.Tensor]] = [[] for _ in range(N)]
    windows: list[TraceWindow] = []
    k = 0
    while True:
        vf, i_f = v.detach().tolist(), i.detach().tolist()
        t_in = arrivals_f[k] if k < len(sources) else math.inf
        horizon = min(t_in, duration)
        s_best, n = math.inf, -1
        for m in range(N):
            s = kernel.first_crossing(vf[m], i_f[m], theta, horizon - tf)
            if s is not None and s < s_best:
                s_best, n = s, m
        t0 = tf + s_best
        if n >= 0 and t0 < horizon:  # a threshold crossing comes first
            windows.append(TraceWindow(tf, t0, tuple(vf), tuple(i_f), n))
            v_n, i_n = kernel.advance(v[n], i[n], t0 - t_cur)
            slope = (i_n - v_n) / neuron.tau_mem
            if float(slope.detach()) > 0.0:  # one Newton step: value t0, implicit-function gradient
                t_k = t0 - (v_n - theta) / slope
            else:  # grazing at rounding level: no usable derivative
                t_k = torch.tensor(t0, dtype=F64)
            if (
                float(t_k.detach()) >= duration
            ):  # keep the gradient, pin the value inside the window
                t_k = t_k + (t0 - float(t_k.detach()))
            v, i = kernel.advance(v, i, t_k - t_cur)
            currents[n].append(i[n])
            v_after = v.new_tensor(neuron.v_reset) if neuron.reset == "zero" else v - theta
            v = torch.where(onehot[n], v_after, v)
            if recurrent is not None:
                i = i + recurrent[:, n]
            spikes[n].append(t_k)
            if len(spikes[n]) > max_spikes:
                raise SnnkitError(
                    f"{name} neuron {n} fires more than max_spikes={max_spikes} times before "
                    f"t={float(t_k.detach()):.6g} ms; spikes are never dropped, pass a larger max_spikes "
                    "or weaker weights"
                )
            t_cur, tf = t_k, float(t_k.detach())
        elif k < len(sources):  # an arrival
            windows.append(TraceWindow(tf, t_in, tuple(vf), tuple(i_f), -1))
            v, i = kernel.advance(v, i, arrivals[k] - t_cur)
            i = i + weight[:, sources[k]]
            t_cur, tf = arrivals[k], t_in
            k += 1
        else:
            windows.append(TraceWindow(tf, duration, tuple(vf), tuple(i_f), -1))
            return spikes, currents, windows


def _pad(rows: list[list[list[torch.Tensor]]], fill: float) -> torch.Tensor:
    """Per-sample, per-neuron lists of scalars -> [B, N, K] padded with ``fill``."""
    B, N = len(rows), len(rows[0]) if rows else 0
    K = max((len(r) for sample in rows for r in sample), default=0)
    if K == 0:
        return torch.full((B, N, 0), fill, dtype=F64)
    pad = torch.tensor(fill, dtype=F64)
    flat = [x for sample in rows for r in sample for x in r + [pad] * (K - len(r))]
    return torch.stack(flat).reshape(B, N, K)


def _events(times: torch.Tensor, duration: float) -> Events:
    """Wrap differentiable spike times (Events validates a detached copy)."""
    return Events(times, duration)


def _check_weight(w: torch.Tensor, n_in: int, what: str) -> None:
    if w.shape[1] != n_in:
        raise SnnkitError(
            f"{what} has {w.shape[1]} inputs (weight shape {tuple(w.shape)}) but its source "
            f"has {n_in} neurons; weight must be [out, {n_in}]"
        )


def simulate(
    layers: Sequence[ExactLayer],
    neuron: ExactNeuron,
    inputs: Events,
    *,
    readout: ExactLayer | None = None,
    readout_neuron: tuple[float, float] | None = None,
    max_spikes: int = 64,
) -> ExactResult:
    """Run the network exactly in float64; see the module docstring for the model.

    ``layers`` are spiking, each fed by the previous one's spikes (the first by ``inputs``).
    ``readout`` (weight [C, N_last]) adds leaky integrators with ``readout_neuron =
    (tau_mem, tau_syn)`` (default: ``neuron``'s). Gradients flow to the weights and to
    ``inputs.times``. A neuron firing more than ``max_spikes`` times raises SnnkitError.
    """
    if not isinstance(inputs, Events):
        raise SnnkitError(
            f"inputs must be snnkit.events.Events, got {type(inputs).__name__}; build one "
            "with Events(times, duration) or Events.from_lists"
        )
    if not isinstance(neuron, ExactNeuron):
        raise SnnkitError(f"neuron must be an ExactNeuron, got {type(neuron).__name__}")
    if not isinstance(max_spikes, int) or isinstance(max_spikes, bool) or max_spikes < 1:
        raise SnnkitError(f"max_spikes must be a positive integer, got {max_spikes!r}")
    duration = inputs.duration
    pre = inputs.times.to(F64)
    spikes: list[Events] = []
    currents: list[torch.Tensor] = []
    traces: list[LayerTrace] = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, ExactLayer):
            raise SnnkitError(f"layers[{index}] must be an ExactLayer, got {type(layer).__name__}")
        name = f"layer {index}"
        _check_weight(layer.weight, pre.shape[1], name)
        w = layer.weight.to(F64)
        r = None if layer.recurrent_weight is None else layer.recurrent_weight.to(F64)
        runs = [
            _run_layer(neuron, w, r, pre[b], duration, max_spikes, name)
            for b in range(pre.shape[0])
        ]
        times = _pad([run[0] for run in runs], math.inf)
        currents.append(_pad([run[1] for run in runs], math.nan))
        spikes.append(_events(times, duration))
        traces.append(LayerTrace(r is not None, [run[2] for run in runs]))
        pre = times
    lir = None
    if readout is not None:
        lir = _readout(readout, readout_neuron, neuron, pre, duration)
    elif readout_neuron is not None:
        raise SnnkitError("readout_neuron was given without readout; pass readout=ExactLayer(W)")
    return ExactResult(spikes, currents, lir, traces)


def _readout(
    readout: ExactLayer,
    readout_neuron: tuple[float, float] | None,
    neuron: ExactNeuron,
    pre: torch.Tensor,
    duration: float,
) -> LIReadout:
    if not isinstance(readout, ExactLayer) or readout.recurrent_weight is not None:
        raise SnnkitError(
            "readout must be an ExactLayer without recurrent_weight (leaky integrators do "
            "not spike); pass readout=ExactLayer(weight[C, N_last])"
        )
    _check_weight(readout.weight, pre.shape[1], "readout")
    if readout_neuron is None:
        kernel = neuron.kernel
    else:
        if not isinstance(readout_neuron, (tuple, list)) or len(readout_neuron) != 2:
            raise SnnkitError(
                f"readout_neuron must be a pair (tau_mem, tau_syn) in ms, got {readout_neuron!r}"
            )
        kernel = Kernel(
            _check_tau("readout tau_mem", readout_neuron[0]),
            _check_tau("readout tau_syn", readout_neuron[1]),
        )
    w = readout.weight.to(F64)
    per_sample = [_arrivals(pre[b]) for b in range(pre.shape[0])]
    E = max((len(src) for _, src, _ in per_sample), default=0)
    times, jumps = [], []
    for values, sources, _ in per_sample:
        missing = E - len(sources)
        times.append(torch.cat([values, values.new_full((missing,), duration)]))
        jumps.append(torch.cat([w[:, sources].T, w.new_zeros(missing, w.shape[0])]))
    if not per_sample:
        return LIReadout(w.new_zeros(0, 0), w.new_zeros(0, 0, w.shape[0]), kernel, duration)
    return LIReadout(torch.stack(times), torch.stack(jumps), kernel, duration)
