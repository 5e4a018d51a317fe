"""Surrogates: torch and CUDA/C++ forms agree with the formulas of docs/neurons.md §2."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.surrogates import (
    BUILTIN_SURROGATES,
    ATan,
    Exponential,
    FastSigmoid,
    Gaussian,
    Rectangle,
    Triangle,
)

V = torch.linspace(-1.0, 3.0, 401, dtype=torch.float64)
THETA = 1.25

# docs/neurons.md §2's table, written out independently of the implementation
REFERENCE = {
    Exponential(width=0.3, scale=2.0): lambda v, th: (
        2.0 / (th * 0.3) * math.exp(-abs(v - th) / (th * 0.3))
    ),
    FastSigmoid(slope=10.0): lambda v, th: 1 / (1 + 10.0 * abs(v - th)) ** 2,
    ATan(alpha=3.0): lambda v, th: 1.5 / (1 + (math.pi / 2 * 3.0 * (v - th)) ** 2),
    Gaussian(sigma=0.4): lambda v, th: (
        math.exp(-((v - th) ** 2) / (2 * 0.16)) / (0.4 * math.sqrt(2 * math.pi))
    ),
    Triangle(width=0.5): lambda v, th: max(0.0, 1 - abs(v - th) / 0.5) / 0.5,
    Rectangle(width=0.5): lambda v, th: (1 / 0.5) if abs(v - th) < 0.25 else 0.0,
}


@pytest.mark.parametrize("surrogate", list(REFERENCE), ids=lambda s: s.name)
def test_torch_matches_formula(surrogate):
    got = surrogate(V, THETA)
    want = torch.tensor([REFERENCE[surrogate](v, THETA) for v in V.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-15)


AREAS = {
    "exponential": 2.0,
    "fast_sigmoid": 2 / 25.0,
    "atan": 1.0,
    "gaussian": 1.0,
    "triangle": 1.0,
    "rectangle": 1.0,
}


@pytest.mark.parametrize("cls", BUILTIN_SURROGATES, ids=lambda c: c.name)
def test_default_surrogate_areas(cls):
    """Total area under each default surrogate (its overall gradient scale) is as documented."""
    v = torch.linspace(-400, 400, 4_000_001, dtype=torch.float64)
    area = torch.trapezoid(cls()(v, 1.0), v).item()
    assert area == pytest.approx(AREAS[cls.name], rel=2e-3)


def test_invalid_parameters_raise():
    with pytest.raises(SnnkitError, match="width"):
        Exponential(width=0.0)
    with pytest.raises(SnnkitError, match="sigma"):
        Gaussian(sigma=-1.0)


HOST_PRELUDE = """
#include <cmath>
#include <cstdio>
using std::exp; using std::fabs; using std::fmax;
#define __host__
#define __device__
#define __forceinline__ inline
"""


def _host_program(surrogate, ctype: str, values: list[float], theta: float) -> str:
    body = "".join(
        f'    std::printf("%.17g\\n", (double)snnkit_surrogate<{ctype}>(({ctype}){v!r}, ({ctype}){theta!r}));\n'
        for v in values
    )
    return HOST_PRELUDE + surrogate.cuda_source() + "int main() {\n" + body + "    return 0;\n}\n"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("surrogate", list(REFERENCE), ids=lambda s: s.name)
@pytest.mark.parametrize("ctype,tol", [("double", 1e-14), ("float", 2e-6)])
def test_cuda_source_computes_the_same_function(tmp_path, surrogate, ctype, tol):
    """The kernel snippet, compiled as host C++, evaluates to the torch surrogate."""
    values = [x / 16 for x in range(-16, 48)]  # v in [-1, 3), avoids the box edges exactly
    src = tmp_path / "s.cpp"
    src.write_text(_host_program(surrogate, ctype, values, THETA))
    exe = tmp_path / "s"
    subprocess.run(["g++", "-std=c++17", "-O1", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    got = torch.tensor([float(x) for x in out], dtype=torch.float64)
    want = surrogate(torch.tensor(values, dtype=torch.float64), THETA)
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_sources_compile_with_nvcc(tmp_path, arch):
    """Every built-in surrogate's device function compiles for fp32 and fp64."""
    parts = []
    for k, cls in enumerate(BUILTIN_SURROGATES):
        fn = f"surrogate_{k}"
        parts.append(cls().cuda_source(fn))
        for t in ("float", "double"):
            parts.append(
                f'extern "C" __global__ void k{k}_{t}(const {t}* v, {t}* out, {t} theta, int n) {{\n'
                f"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                f"  if (i < n) out[i] = {fn}<{t}>(v[i], theta);\n}}\n"
            )
    src = tmp_path / "surrogates.cu"
    src.write_text("\n".join(parts))
    subprocess.run(
        ["nvcc", "--ptx", f"-arch={arch}", str(src), "-o", str(tmp_path / "s.ptx")],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "s.ptx").stat().st_size > 0
