"""The surrogate body check: a surrogate's C++/CUDA body against its torch form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from snnkit.conformance.surrogate_body import POINTS, THETAS, check_body, grid
from snnkit.surrogates import BUILTIN_SURROGATES, Exponential


@dataclass(frozen=True)
class SlightlyOff(Exponential):
    """The exponential surrogate with a body 1e-6 (relative) too large."""

    name: ClassVar[str] = "slightly_off"

    def cuda_body(self):
        return f"T(1.000001) * ({super().cuda_body()})"


@dataclass(frozen=True)
class WrongTail(Exponential):
    """Right at the threshold, wrong beyond three widths (a mistake only a wide grid sees)."""

    name: ClassVar[str] = "wrong_tail"

    def cuda_body(self):
        return f"(fabs(d) < T(3) * theta * T(0.5) ? {super().cuda_body()} : T(0))"


@dataclass(frozen=True)
class Uncompilable(Exponential):
    name: ClassVar[str] = "uncompilable"

    def cuda_body(self):
        return "exp(-fabs(d) / width)"  # no such variable in C++


def test_the_grid_covers_every_threshold_and_hits_it_exactly():
    for dtype in (torch.float64, torch.float32):
        v, theta = grid(dtype)
        assert v.numel() == theta.numel() == POINTS * len(THETAS) and v.dtype == dtype
        for k, t in enumerate(THETAS):
            part = v[k * POINTS : (k + 1) * POINTS]
            assert (part == t).sum() == 1  # the peak
            assert part.min() == pytest.approx(-7 * t) and part.max() == pytest.approx(9 * t)


@pytest.mark.parametrize("cls", BUILTIN_SURROGATES, ids=lambda c: c.name)
def test_every_builtin_surrogate_body_matches_its_torch_form(cls):
    body = check_body(cls(), nvcc=False)
    assert body.passed, body.summary()
    assert body.errors["float64"] < 1e-15 and body.errors["float32"] < 1e-6


def test_a_body_1e_6_off_fails_in_float64_though_float32_would_pass():
    body = check_body(SlightlyOff(), nvcc=False)
    assert not body.passed
    assert body.errors["float64"] == pytest.approx(1e-6, rel=1e-3)
    assert body.errors["float32"] < 1e-4  # within float32's tolerance: float64 catches it
    assert "by max rel err 1.0e-06 in float64 (tolerance 1e-10)" in body.problem
    assert body.summary().startswith("surrogate slightly_off(width=0.5, scale=1.0): its C++/CUDA")


def test_a_body_wrong_only_in_the_tails_fails():
    body = check_body(WrongTail(), nvcc=False)
    assert not body.passed and body.errors["float64"] > 1e-3


def test_a_body_that_does_not_compile_says_what_the_compiler_said():
    body = check_body(Uncompilable(), nvcc=False)
    assert not body.passed
    assert body.problem.startswith("its C++/CUDA body: compiling a CPU kernel failed")
    assert "width" in body.problem and "\n" not in body.problem


class Unhashable(Exponential):
    """Not a frozen dataclass of its own (an unhashable subclass): checked, not cached."""

    __hash__ = None  # type: ignore[assignment]
    name: ClassVar[str] = "unhashable"


@dataclass(frozen=True)
class Crashing(Exponential):
    name: ClassVar[str] = "crashing"

    def __call__(self, v, theta):
        raise ValueError("no torch form yet")


def test_an_unhashable_surrogate_is_checked_too():
    assert check_body(Unhashable(), nvcc=False).passed


def test_a_torch_form_that_raises_is_the_surrogates_failure():
    body = check_body(Crashing(), nvcc=False)
    assert body.problem == "its torch form (__call__) raised ValueError: no torch form yet"
