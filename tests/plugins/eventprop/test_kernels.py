"""EventProp CUDA kernels: they compile (nvcc), their logic matches the torch path (host
emulation: the .cu compiled as C++ and run thread by thread), and run on a GPU (-m gpu)."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from snnkit_eventprop import cuda
from snnkit_eventprop.adjoint import adjoint_layer
from snnkit_eventprop.simulate import LayerConfig, run_layer

from snnkit import kernels
from snnkit.errors import SnnkitError

NVCC = shutil.which("nvcc")
CXX = shutil.which("g++") or shutil.which("c++")
KERNELS = ("eventprop_forward", "eventprop_backward")


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_eventprop.cuda, snnkit_eventprop.plugin; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch, tmp_path):
    refs = ", ".join(f"(void*)&{k}<{t}>" for k in KERNELS for t in ("float", "double"))
    src = tmp_path / "eventprop.cu"
    src.write_text(cuda.source() + f"\n[[maybe_unused]] void* const instances[] = {{{refs}}};\n")
    ptx = tmp_path / "eventprop.ptx"
    cmd = [NVCC, "--ptx", f"-arch={arch}", "--std=c++17", *cuda._OPTIONS, "-Werror", "all-warnings"]
    done = subprocess.run([*cmd, "-o", str(ptx), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entries = [line for line in ptx.read_text().splitlines() if ".entry" in line]
    assert len(entries) == 4


# --- host emulation ---------------------------------------------------------------------

_PRELUDE = """\
#include <cmath>
#include <cstddef>
#include <utility>
using std::exp; using std::expm1; using std::fabs; using std::log;
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
struct ep_dim3 { unsigned x = 0, y = 0, z = 0; };
static ep_dim3 blockIdx, threadIdx, blockDim;
template <typename T> T atomicAdd(T* p, T v) { T old = *p; *p += v; return old; }
"""

_LAUNCHER = """
template <typename... A, std::size_t... I>
static void ep_unpack(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<A*>(args[I])...);
}
template <typename... A>
static void ep_call(void (*f)(A...), void** args) {
    ep_unpack(f, args, std::index_sequence_for<A...>{});
}
extern "C" void ep_run(unsigned grid, unsigned block, void** args) {
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx.x = b;
            threadIdx.x = t;
            ep_call(&KERNEL, args);
        }
    }
}
"""


class _HostKernel:
    """Runs a kernel's threads one after another on the CPU, arguments marshalled like CUDA's."""

    def __init__(self, library, dtype):
        self.library, self.dtype = library, dtype

    def __call__(self, grid, block, args, stream=None):
        scalar = ctypes.c_float if self.dtype == torch.float32 else ctypes.c_double
        values = []
        for arg in args:
            if isinstance(arg, torch.Tensor):
                assert arg.is_contiguous()
                assert arg.dtype in (self.dtype, torch.int64), arg.dtype
                values.append(ctypes.c_void_p(arg.data_ptr()))
            elif isinstance(arg, int):
                values.append(ctypes.c_int(arg))
            else:
                values.append(scalar(arg))
        pointers = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        self.library.ep_run(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), pointers)


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler")
    build, cache = tmp_path_factory.mktemp("eventprop_host"), {}

    def compile_kernel(source, name, dtype, options=()):
        key = (hashlib.sha256(source.encode()).hexdigest()[:16], name, kernels.ctype(dtype))
        if key not in cache:
            stem = build / "_".join(key)
            launcher = _LAUNCHER.replace("KERNEL", f"{name}<{key[2]}>")
            Path(f"{stem}.cpp").write_text(_PRELUDE + source + launcher)
            done = subprocess.run(
                [CXX, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC"]
                + [f"{stem}.cpp", "-o", f"{stem}.so"],
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
            cache[key] = _HostKernel(ctypes.CDLL(f"{stem}.so"), dtype)
        return cache[key]

    return compile_kernel


def _case(dtype, device, reset="subtract", taus=(10.0, 5.0), seed=0):
    gen = torch.Generator().manual_seed(seed)
    pre = (torch.rand(3, 5, 3, generator=gen, dtype=torch.float64) * 30).sort(-1).values
    pre[0, 1, 2] = float("inf")  # padding
    w = (torch.randn(7, 5, generator=gen, dtype=torch.float64) + 0.8) * 1.2
    config = LayerConfig(taus[0], taus[1], 1.0, reset, 0.0, 40.0, 64)
    grad = lambda times: torch.randn(times.shape, generator=gen, dtype=torch.float64)  # noqa: E731
    return pre.to(device, dtype), w.to(device, dtype), config, grad


TOL = {torch.float64: 1e-10, torch.float32: 2e-3}


def _compare(dtype, device, **kw):
    pre, w, config, grad = _case(dtype, device, **kw)
    want = run_layer(pre.cpu(), w.cpu(), None, config)
    got = cuda.run_layer(pre, w, config)
    assert torch.equal(got.counts.cpu(), want.counts)
    assert int(want.counts.sum()) > 10 and want.times.shape[-1] > 1
    finite = torch.isfinite(want.times)
    tol = TOL[dtype]
    assert (got.times.cpu()[finite] - want.times[finite]).abs().max() <= tol * 40
    g = grad(want.times).to(dtype)
    d_arr, d_w, _ = adjoint_layer(want, g, w.cpu(), None, config)
    got_arr, got_w = cuda.adjoint_layer(got, g.to(device), w, config)
    for a, b in ((got_arr.cpu(), d_arr), (got_w.cpu(), d_w)):
        assert (a - b).abs().max() <= tol * b.abs().max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize(
    "kw",
    [{}, {"reset": "zero"}, {"taus": (5.0, 5.0)}, {"taus": (10.0, 3.0)}],
    ids=["subtract", "zero", "equal-taus", "general-taus"],
)
def test_host_emulation_matches_torch(host_kernels, monkeypatch, dtype, kw):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    _compare(dtype, "cpu", **kw)


def test_host_emulation_spike_bound(host_kernels, monkeypatch):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    pre = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.full((2, 1), 50.0, dtype=torch.float64)
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 1000)
    record = cuda.run_layer(pre, w, config)  # the buffer is re-sized past _CAP
    assert record.times.shape[-1] > cuda._CAP
    assert torch.equal(record.counts, run_layer(pre, w, None, config).counts)
    small = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 3)
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        cuda.run_layer(pre, w, small)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_gpu_matches_torch(dtype):
    if not cuda.available():
        pytest.skip("needs CuPy and a CUDA device")
    _compare(dtype, "cuda")


@pytest.mark.gpu
def test_gpu_conformance():
    if not cuda.available():
        pytest.skip("needs CuPy and a CUDA device")
    from snnkit_eventprop.method import EventProp

    from snnkit.conformance import check

    results = check(EventProp(), ["float64"], device="cuda")
    assert all(r.passed for r in results), [(r.case, r.detail) for r in results if not r.passed]
