"""Surrogate derivatives ds/dv that stand in for the Heaviside's derivative (docs/neurons.md §2).

Each surrogate is a pure function of the pre-reset membrane ``v`` and the threshold
``theta`` (so kernels can recompute it in the backward pass instead of storing it),
given twice: as torch code (``__call__``) and as a CUDA/C++ device function
(``cuda_source``) with the same parameters baked in at full precision.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from snnkit.errors import SnnkitError

CUDA_FUNCTION = "snnkit_surrogate"


def _lit(x: float) -> str:
    """A C literal of ``x`` cast to the kernel's type T, exact in double."""
    return f"T({float(x)!r})"


class Surrogate(ABC):
    """ds/dv as a function of (v, theta). Subclasses are frozen dataclasses of parameters."""

    name: ClassVar[str] = ""

    @abstractmethod
    def __call__(self, v: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
        """The surrogate derivative at ``v`` for threshold ``theta`` (broadcasting)."""

    @abstractmethod
    def cuda_body(self) -> str:
        """C++ expression of type T in terms of ``v``, ``theta`` and ``d = v - theta``."""

    def cuda_source(self, function: str = CUDA_FUNCTION) -> str:
        """A ``template <typename T> __host__ __device__`` function computing the surrogate."""
        return (
            f"// surrogate {self.describe()}\n"
            f"template <typename T>\n"
            f"__host__ __device__ __forceinline__ T {function}(T v, T theta) {{\n"
            f"    const T d = v - theta;\n"
            f"    (void)d;\n"
            f"    return {self.cuda_body()};\n"
            f"}}\n"
        )

    def describe(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{self.name}({args})"

    def _require_positive(self, **params: float) -> None:
        for key, value in params.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SnnkitError(
                    f"surrogate '{self.name}': {key} must be a positive number, got {value!r}"
                )


@dataclass(frozen=True)
class Exponential(Surrogate):
    """SLAYER/EXODUS single exponential: c/(theta*w) * exp(-|v-theta|/(theta*w))."""

    name: ClassVar[str] = "exponential"
    width: float = 0.5
    scale: float = 1.0

    def __post_init__(self) -> None:
        self._require_positive(width=self.width, scale=self.scale)

    def __call__(self, v, theta):
        tw = theta * self.width
        return self.scale / tw * torch.exp(-torch.abs(v - theta) / tw)

    def cuda_body(self) -> str:
        tw = f"(theta * {_lit(self.width)})"
        return f"{_lit(self.scale)} / {tw} * exp(-fabs(d) / {tw})"


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike: 1/(1 + k|v-theta|)^2."""

    name: ClassVar[str] = "fast_sigmoid"
    slope: float = 25.0

    def __post_init__(self) -> None:
        self._require_positive(slope=self.slope)

    def __call__(self, v, theta):
        return 1.0 / (1.0 + self.slope * torch.abs(v - theta)) ** 2

    def cuda_body(self) -> str:
        return f"T(1) / ((T(1) + {_lit(self.slope)} * fabs(d)) * (T(1) + {_lit(self.slope)} * fabs(d)))"


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent: (a/2) / (1 + (pi/2 * a * (v-theta))^2)."""

    name: ClassVar[str] = "atan"
    alpha: float = 2.0

    def __post_init__(self) -> None:
        self._require_positive(alpha=self.alpha)

    def __call__(self, v, theta):
        u = (math.pi / 2 * self.alpha) * (v - theta)
        return (self.alpha / 2) / (1.0 + u * u)

    def cuda_body(self) -> str:
        u = f"({_lit(math.pi / 2 * self.alpha)} * d)"
        return f"{_lit(self.alpha / 2)} / (T(1) + {u} * {u})"


@dataclass(frozen=True)
class Gaussian(Surrogate):
    """Normal density of v - theta with standard deviation sigma."""

    name: ClassVar[str] = "gaussian"
    sigma: float = 0.5

    def __post_init__(self) -> None:
        self._require_positive(sigma=self.sigma)

    def __call__(self, v, theta):
        z = (v - theta) / self.sigma
        return torch.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2 * math.pi))

    def cuda_body(self) -> str:
        z = f"(d / {_lit(self.sigma)})"
        return f"exp(T(-0.5) * {z} * {z}) / {_lit(self.sigma * math.sqrt(2 * math.pi))}"


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Piecewise-linear hat of unit area: max(0, 1 - |v-theta|/w) / w."""

    name: ClassVar[str] = "triangle"
    width: float = 1.0

    def __post_init__(self) -> None:
        self._require_positive(width=self.width)

    def __call__(self, v, theta):
        return torch.clamp(1.0 - torch.abs(v - theta) / self.width, min=0.0) / self.width

    def cuda_body(self) -> str:
        w = _lit(self.width)
        return f"fmax(T(0), T(1) - fabs(d) / {w}) / {w}"


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """Box of unit area: 1/w where |v-theta| < w/2, else 0."""

    name: ClassVar[str] = "rectangle"
    width: float = 1.0

    def __post_init__(self) -> None:
        self._require_positive(width=self.width)

    def __call__(self, v, theta):
        inside = torch.abs(v - theta) < self.width / 2
        return inside.to(torch.as_tensor(v).dtype) / self.width

    def cuda_body(self) -> str:
        return f"(fabs(d) < {_lit(self.width / 2)} ? T(1) / {_lit(self.width)} : T(0))"


BUILTIN_SURROGATES: tuple[type[Surrogate], ...] = (
    Exponential,
    FastSigmoid,
    ATan,
    Gaussian,
    Triangle,
    Rectangle,
)


def kernel_source(source: str, surrogate: Surrogate | None = None) -> str:
    """Kernel ``source`` that calls ``snnkit_surrogate(v, theta)``, preceded by
    ``surrogate``'s device function, or only by its declaration when no surrogate is
    given (kernels compiled for a pass that never calls it, e.g. a forward pass)."""
    if surrogate is None:
        head = f"template <typename T> __host__ __device__ T {CUDA_FUNCTION}(T v, T theta);\n"
    else:
        head = surrogate.cuda_source(CUDA_FUNCTION) + "\n"
    return head + source
