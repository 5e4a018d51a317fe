"""The spike response model neuron (``--neuron srm``) and the kernels SLAYER samples.

SRM (Shrestha & Orchard 2018; docs/methods/slayer.md), with ``c`` the input current::

    u_t = sum_k eps[k] c_{t-k}                    (PSP: the input filtered by eps)
    v_t = u_t + sum_{s<t} nu[t-s] a_s              (plus the refractory response)
    a_t = H(v_t - theta)

    eps(t) = t/tau_sr * exp(1 - t/tau_sr)
    nu(t)  = -scale_ref * theta * t/tau_ref * exp(1 - t/tau_ref)

sampled at ``t = k dt`` and truncated once past the peak and below ``truncate`` times the
peak magnitude. Both kernels vanish at k = 0, so a spike's refractory response starts
one step later and the pre- and post-reset membranes of a step coincide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from snnkit import NeuronSpec, SnnkitError

MAX_KERNEL_STEPS = 100_000


def _positive(name: str, value: float) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    if not ok:
        raise SnnkitError(f"srm: {name} must be a positive finite number, got {value!r}")


def alpha_kernel(tau: float, dt: float, truncate: float) -> list[float]:
    """``t/tau * exp(1 - t/tau)`` at ``t = k dt``, until past the peak and < ``truncate``."""
    values, k = [], 0
    while True:
        t = k * dt
        value = t / tau * math.exp(1.0 - t / tau)
        if t > tau and value < truncate:
            break
        values.append(value)
        k += 1
        if k > MAX_KERNEL_STEPS:
            raise SnnkitError(
                f"srm: a kernel with tau={tau} at dt={dt} exceeds {MAX_KERNEL_STEPS} steps; "
                "increase dt or truncate"
            )
    return values


@dataclass(frozen=True)
class SRM(NeuronSpec):
    """Spike response model with SLAYER's alpha-shaped PSP and refractory kernels."""

    kind: ClassVar[str] = "srm"
    tau_sr: float = 5.0
    tau_ref: float = 2.0
    scale_ref: float = 2.0
    threshold: float = 1.0
    truncate: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tau_sr", "tau_ref", "scale_ref", "threshold"):
            _positive(name, getattr(self, name))
        if not (isinstance(self.truncate, (int, float)) and 0 < self.truncate < 1):
            raise SnnkitError(f"srm: truncate must be in (0, 1), got {self.truncate!r}")

    def quantities(self) -> dict[str, float]:
        return {"threshold": self.threshold}

    def psp_kernel(self) -> list[float]:
        """eps[k], k = 0 .. K-1 (eps[0] = 0: the PSP starts one step after the input)."""
        return alpha_kernel(self.tau_sr, self.dt, self.truncate)

    def refractory_kernel(self) -> list[float]:
        """nu[k], k = 0 .. K-1, negative (nu[0] = 0)."""
        peak = self.scale_ref * self.threshold
        return [-peak * x for x in alpha_kernel(self.tau_ref, self.dt, self.truncate)]
