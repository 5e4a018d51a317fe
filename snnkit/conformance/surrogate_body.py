"""A surrogate's two forms agree: its C++/CUDA body against its torch code, on a grid.

Compiled kernels (EXODUS, Rouser, SLAYER, a plugin's own) inline ``cuda_source()``;
BPTT and every torch path call the surrogate itself. If the two differ, a kernel method
is checked against an oracle that computes another function, and its gradient cases fail
with errors that point nowhere near the cause. So before any gradient case with a given
surrogate, :func:`check_body` evaluates both forms over a dense grid of ``(v, theta)`` in
float64 and float32: the body is compiled by the host C++ compiler (``snnkit.host``) as a
CUDA kernel emulated thread by thread, the same source nvcc compiles for a GPU, and
compared with the torch form in the same dtype to the raster tolerance of that dtype. Where
nvcc is on PATH the CUDA form is also compiled for ``sm_80`` (syntax the host compiler
would accept but nvcc would not).
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass

import torch

from snnkit.conformance.metrics import TOLERANCES, compare
from snnkit.errors import SnnkitError
from snnkit.surrogates import CUDA_FUNCTION, Surrogate

THETAS = (0.25, 0.5, 1.0, 2.0)
SPAN = 8.0  # v - theta over [-SPAN theta, SPAN theta]
POINTS = 16001  # per threshold, v == theta among them
KERNEL = "snnkit_surrogate_grid"
NVCC_ARCH = "sm_80"

_GRID_KERNEL = f"""
template <typename T>
__global__ void {KERNEL}(const T* v, const T* theta, T* out, int n) {{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) out[k] = {CUDA_FUNCTION}<T>(v[k], theta[k]);
}}
"""
BLOCK = 256


@dataclass(frozen=True)
class BodyCheck:
    """The outcome for one surrogate: ``errors`` is the max relative error (to the torch
    form's peak, per threshold) by dtype; ``problem`` says why it failed, or None."""

    surrogate: str
    points: int
    errors: dict[str, float]
    nvcc: str  # what became of the nvcc build: "sm_80", or why there was none
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        """One line for the console."""
        if self.problem is not None:
            return f"surrogate {self.surrogate}: {self.problem}"
        errs = ", ".join(f"{d} {e:.1e}" for d, e in self.errors.items())
        nvcc = f"CUDA form compiled by nvcc ({self.nvcc})" if self.nvcc == NVCC_ARCH else self.nvcc
        return (
            f"surrogate {self.surrogate}: C++/CUDA body = torch form on {self.points} points "
            f"(max rel err {errs}); {nvcc}"
        )

    def to_json(self) -> dict:
        return {
            "surrogate": self.surrogate,
            "points": self.points,
            "max_rel_err": self.errors,
            "nvcc": self.nvcc,
            "passed": self.passed,
            "problem": self.problem,
        }


def grid(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(v, theta)``, flat, in ``dtype``: for each threshold ``POINTS`` membranes around it,
    the threshold itself included (the surrogate's peak, and where a box has its edge at
    ``theta`` plus or minus a half width)."""
    steps = torch.linspace(-SPAN, SPAN, POINTS, dtype=torch.float64)
    steps[POINTS // 2] = 0.0
    v = torch.cat([theta + theta * steps for theta in THETAS])
    theta = torch.cat([torch.full((POINTS,), t, dtype=torch.float64) for t in THETAS])
    return v.to(dtype), theta.to(dtype)


def body_values(surrogate: Surrogate, v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """The C++ body at each ``(v, theta)``, compiled by the host compiler (raises
    :class:`SnnkitError` with the compiler's first error)."""
    from snnkit import host

    kernel = host.compile_kernel(
        surrogate.cuda_source() + _GRID_KERNEL, KERNEL, v.dtype, emulate=True
    )
    out = torch.empty_like(v)
    n = v.numel()
    kernel(((n + BLOCK - 1) // BLOCK,), (BLOCK,), [v.contiguous(), theta.contiguous(), out, n])
    return out


def _nvcc(surrogate: Surrogate) -> str:
    if shutil.which("nvcc") is None:
        return "nvcc not on PATH: the CUDA form was not compiled"
    from snnkit.kernels import instantiate, nvcc_ptx

    nvcc_ptx(surrogate.cuda_source() + _GRID_KERNEL + instantiate([KERNEL]), NVCC_ARCH)
    return NVCC_ARCH


def check_body(
    surrogate: Surrogate, dtypes: tuple[str, ...] = ("float64", "float32"), nvcc: bool = True
) -> BodyCheck:
    """Compare ``surrogate``'s C++/CUDA body with its torch form (once per process for a
    hashable surrogate, as the frozen dataclasses are); ``nvcc`` False skips the nvcc build."""
    try:
        return _check_once(surrogate, dtypes, nvcc)
    except TypeError:  # unhashable: checked every time
        return _check(surrogate, dtypes, nvcc)


@functools.cache
def _check_once(surrogate: Surrogate, dtypes: tuple[str, ...], nvcc: bool) -> BodyCheck:
    return _check(surrogate, dtypes, nvcc)


def _check(surrogate: Surrogate, dtypes: tuple[str, ...], nvcc: bool) -> BodyCheck:
    name = surrogate.describe()
    errors: dict[str, float] = {}
    points = 0
    try:
        for dtype in dtypes:
            v, theta = grid(getattr(torch, dtype))
            points = v.numel()
            got = body_values(surrogate, v, theta).to(torch.float64)
            try:
                want = torch.as_tensor(surrogate(v, theta)).to(torch.float64)
            except Exception as exc:  # a plugin's torch form that crashes: its failure
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                problem = f"its torch form (__call__) raised {type(exc).__name__}: {first}"
                return BodyCheck(name, points, errors, "not compiled", problem)
            per_theta = zip(got.split(POINTS), want.split(POINTS), strict=True)
            errors[dtype] = max(compare([g], [w]).max_rel_err for g, w in per_theta)
        worst = max(errors, key=lambda d: errors[d] / TOLERANCES["raster", d])
        if errors[worst] > TOLERANCES["raster", worst]:
            return BodyCheck(
                name, points, errors, "not compiled",
                f"its C++/CUDA body (cuda_body) differs from its torch form (__call__) by "
                f"max rel err {errors[worst]:.1e} in {worst} (tolerance "
                f"{TOLERANCES['raster', worst]:.0e}) over {points} points (v, theta); "
                "make the two compute the same function",
            )  # fmt: skip
        built = _nvcc(surrogate) if nvcc else "nvcc not run"
    except SnnkitError as exc:
        return BodyCheck(name, points, errors, "not compiled", f"its C++/CUDA body: {exc}")
    return BodyCheck(name, points, errors, built)
