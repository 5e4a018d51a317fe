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


EXP = """
template <typename T>
void exp_driver(const T* x, T* y, int n) {
    for (int k = 0; k < n; ++k) { y[k] = T(2) * exp(-fabs(x[k] - T(1)) / T(0.5)); }
}
"""


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_tuned_builds_compute_what_plain_builds_do(dtype, monkeypatch):
    """-march=native and libmvec's vector exp (when the probe accepts them) change speed,
    not results beyond a few ulp; SNNKIT_HOST_NATIVE=0 builds plainly, into another entry."""
    cxx = host.compiler()
    tuned_flags = host.tuning(cxx)
    assert tuned_flags in host.TUNINGS
    x = torch.linspace(-3, 5, 1001, dtype=dtype)
    tuned, plain = torch.empty_like(x), torch.empty_like(x)
    host.compile_kernel(EXP, "exp_driver", dtype)((1,), (1,), (x, tuned, x.numel()))
    monkeypatch.setenv("SNNKIT_HOST_NATIVE", "0")
    host.tuning.cache_clear()
    try:
        assert host.tuning(cxx) == ()
        host.compile_kernel(EXP, "exp_driver", dtype)((1,), (1,), (x, plain, x.numel()))
    finally:
        monkeypatch.delenv("SNNKIT_HOST_NATIVE")
        host.tuning.cache_clear()
    want = 2 * torch.exp(-(x - 1).abs() / 0.5)
    eps = torch.finfo(dtype).eps
    assert torch.allclose(tuned, want, rtol=8 * eps, atol=0)
    assert torch.allclose(plain, want, rtol=8 * eps, atol=0)
    assert len(list(host.cache_dir().glob("*.so"))) == (2 if tuned_flags else 1)


def test_a_tuning_the_compiler_refuses_is_skipped(monkeypatch):
    monkeypatch.setattr(host, "TUNINGS", (("-fno-such-flag-anywhere",), ()))
    assert host.tuning.__wrapped__(host.compiler()) == ()


def test_probed_tries_once_and_warns_once_on_failure(monkeypatch):
    import warnings

    calls = []

    @host.probed("Good")
    def good():
        calls.append("good")

    @host.probed("Broken")
    def broken():
        calls.append("broken")
        raise SnnkitError("compiling a CPU kernel failed (g++): boom")

    assert good() and good() and calls == ["good"]
    with pytest.warns(UserWarning, match="Broken CPU kernels unavailable, using the torch path: "):
        assert broken() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert broken() is False
    assert calls == ["good", "broken"]
    monkeypatch.setenv("SNNKIT_HOST_KERNELS", "0")
    good.cache_clear()
    assert good() is False and calls == ["good", "broken"]  # not even tried
