"""snnkit.kernels without a GPU: dtype mapping, and offline nvcc builds for CI."""

from __future__ import annotations

import shutil

import pytest
import torch

from snnkit import kernels
from snnkit.errors import SnnkitError

NEEDS_NVCC = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
AXPY = """
template <typename T>
__global__ void axpy(const T* x, T* y, T a, int n) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) { y[k] += a * x[k]; }
}
"""


def test_ctype_and_its_error():
    assert kernels.ctype(torch.float32) == "float" and kernels.ctype(torch.float64) == "double"
    with pytest.raises(SnnkitError, match="float32 or float64"):
        kernels.ctype(torch.float16)


def test_importing_never_needs_cupy():
    import subprocess
    import sys

    code = "import sys, snnkit.kernels; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@NEEDS_NVCC
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_ptx_builds_every_instantiation(arch):
    ptx = kernels.nvcc_ptx(AXPY + kernels.instantiate(["axpy"]), arch)
    assert ptx.count(".entry") == 2 and f".target {arch}" in ptx


@NEEDS_NVCC
def test_nvcc_errors_and_warnings_fail_with_the_message():
    with pytest.raises(SnnkitError, match="nvcc failed for sm_80: .*expected an expression"):
        kernels.nvcc_ptx(AXPY.replace("a * x[k]", "a *") + kernels.instantiate(["axpy"]), "sm_80")
    unused = AXPY.replace("const int k", "int unused = 0; const int k")
    with pytest.raises(SnnkitError, match="unused"):
        kernels.nvcc_ptx(unused + kernels.instantiate(["axpy"]), "sm_80")


def test_missing_nvcc_is_one_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SnnkitError, match="nvcc is not on PATH"):
        kernels.nvcc_ptx(AXPY, "sm_80")
