"""Rouser's surrogate: the paper's exponential, in absolute voltage units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from snnkit.surrogates import Surrogate


def _lit(x: float) -> str:
    return f"T({float(x)!r})"


@dataclass(frozen=True)
class RouserExponential(Surrogate):
    """dS/dV = (s/tau) exp(-|V - Th|/tau), with s and tau in absolute voltage units.

    Unlike the built-in ``exponential`` (width ``theta * w``), the width does not scale with
    the threshold, so ``dS/dTh = -dS/dV`` holds exactly while ``Th`` is trained.
    Defaults are the paper's: s = 1.5, tau = 3.75.
    """

    name: ClassVar[str] = "rouser_exponential"
    scale: float = 1.5
    tau: float = 3.75

    def __post_init__(self) -> None:
        self._require_positive(scale=self.scale, tau=self.tau)

    def __call__(self, v, theta):
        return (self.scale / self.tau) * torch.exp(-torch.abs(v - theta) / self.tau)

    def cuda_body(self) -> str:
        return f"{_lit(self.scale / self.tau)} * exp(-fabs(d) / {_lit(self.tau)})"
