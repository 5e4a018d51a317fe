"""snnkit.host: kernel sources built for the CPU, cached on disk, launched on CPU tensors."""

from __future__ import annotations

import pytest
import torch

from snnkit import host
from snnkit.errors import SnnkitError

pytestmark = pytest.mark.skipif(not host.available(), reason="no C++ compiler")

AXPY = """
template <typename T>
__global__ void axpy(const T* x, T* y, T a, int n) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) { y[k] += a * x[k]; }
}
template <typename T>
void axpy_driver(const T* x, T* y, T a, int n) {
#pragma omp parallel for num_threads(snnkit_threads)
    for (int k = 0; k < n; ++k) { y[k] += a * x[k]; }
}
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(host, "_LOADED", {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_emulated_grid_and_driver_agree(dtype):
    x = torch.arange(10, dtype=dtype)
    y1, y2 = torch.ones(10, dtype=dtype), torch.ones(10, dtype=dtype)
    host.compile_kernel(AXPY, "axpy", dtype, emulate=True)((3,), (4,), (x, y1, 2.0, 10))
    host.compile_kernel(AXPY, "axpy_driver", dtype)((1,), (1,), (x, y2, 2.0, 10))
    assert torch.equal(y1, 1 + 2 * x) and torch.equal(y2, y1)


def test_libraries_are_cached_on_disk_and_reused(monkeypatch):
    host.compile_kernel(AXPY, "axpy_driver", torch.float64)
    (library,) = host.cache_dir().glob("*.so")
    monkeypatch.setattr(host, "_LOADED", {})
    monkeypatch.setattr(host.subprocess, "run", lambda *a, **k: pytest.fail("recompiled"))
    host.compile_kernel(AXPY, "axpy_driver", torch.float64)
    assert list(host.cache_dir().glob("*.so")) == [library]


def test_a_compile_error_is_one_line():
    with pytest.raises(SnnkitError, match="compiling a CPU kernel failed") as info:
        host.compile_kernel(
            "template <typename T> void broken(T x) { x +; }", "broken", torch.float32
        )
    assert "\n" not in str(info.value)
    assert not list(host.cache_dir().glob("*.so"))  # nothing half-built is kept


def test_bad_arguments_are_refused():
    kernel = host.compile_kernel(AXPY, "axpy_driver", torch.float32)
    x, y = torch.zeros(4), torch.zeros(4)
    with pytest.raises(ValueError, match="3 arguments, expected 4"):
        kernel((1,), (1,), (x, y, 1.0))
    with pytest.raises(ValueError, match="runs in torch.float32"):
        kernel((1,), (1,), (x.double(), y, 1.0, 4))
    with pytest.raises(ValueError, match="contiguous CPU"):
        kernel((1,), (1,), (torch.zeros(4, 2)[:, 0], y, 1.0, 4))


def test_missing_compiler_and_opt_out(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert host.compiler() is None and not host.available()
    with pytest.raises(SnnkitError, match="no C\\+\\+ compiler"):
        host.compile_kernel(AXPY, "axpy_driver", torch.float32)
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("SNNKIT_HOST_KERNELS", "0")
    assert not host.available()
