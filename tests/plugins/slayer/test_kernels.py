"""The SLAYER CUDA kernels: they compile (nvcc), match the torch code (host emulation on
CPU; a real GPU with ``-m gpu``) and pass the conformance suite on device="cuda"."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from snnkit_slayer import SRM, Slayer, cuda, filters, scan

from snnkit import kernels
from snnkit.conformance import case_names, run_case

NVCC = shutil.which("nvcc")
PTXAS = shutil.which("ptxas")
CXX = shutil.which("g++") or shutil.which("c++")
KERNELS = ("slayer_filter", "slayer_spikes_exp", "slayer_spikes_fir")
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_slayer, snnkit_slayer.cuda; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch, tmp_path):
    refs = ", ".join(f"(void*)&{n}<{t}>" for n in KERNELS for t in ("float", "double"))
    src = tmp_path / "slayer_all.cu"
    src.write_text(f"{cuda.source()}\n[[maybe_unused]] void* const instances[] = {{{refs}}};\n")
    ptx = tmp_path / "slayer_all.ptx"
    cmd = [NVCC, "--ptx", f"-arch={arch}", "--std=c++17", *cuda._OPTIONS, "-Werror", "all-warnings"]
    done = subprocess.run([*cmd, "-o", str(ptx), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sum(".entry" in line for line in ptx.read_text().splitlines()) == 2 * len(KERNELS)
    if PTXAS is not None:
        done = subprocess.run(
            [PTXAS, f"-arch={arch}", "-o", str(tmp_path / "slayer_all.cubin"), str(ptx)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr


# --- host emulation: the .cu source compiled by a C++ compiler, driven through cuda.py ---------

_PRELUDE = """\
#include <cmath>
#include <cstddef>
#include <utility>
using std::floor;
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
struct snnkit_dim3 { unsigned x = 0, y = 0, z = 0; };
static snnkit_dim3 blockIdx, threadIdx, blockDim;
"""

_LAUNCHER = """
template <typename... A, std::size_t... I>
static void call_unpacked(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<A*>(args[I])...);
}
template <typename... A>
static constexpr unsigned arity(void (*)(A...)) { return sizeof...(A); }
template <typename... A>
static void call(void (*f)(A...), void** args) {
    call_unpacked(f, args, std::index_sequence_for<A...>{});
}
extern "C" unsigned host_arguments() { return arity(&KERNEL); }
extern "C" void host_run(unsigned grid, unsigned block, void** args) {
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx.x = b;
            threadIdx.x = t;
            call(&KERNEL, args);
        }
    }
}
"""


class _HostKernel:
    """Runs a kernel's threads one after another on the CPU (in launch order)."""

    def __init__(self, library: ctypes.CDLL, dtype: torch.dtype) -> None:
        self.library, self.dtype = library, dtype
        library.host_arguments.restype = ctypes.c_uint

    def __call__(self, grid, block, args, stream=None) -> None:
        assert len(args) == self.library.host_arguments(), "wrong number of kernel arguments"
        scalar = ctypes.c_float if self.dtype == torch.float32 else ctypes.c_double
        values = []
        for arg in args:
            if isinstance(arg, torch.Tensor):
                assert arg.is_contiguous() and arg.dtype == self.dtype
                values.append(ctypes.c_void_p(arg.data_ptr()))
            elif isinstance(arg, int):
                values.append(ctypes.c_int(arg))
            else:
                values.append(scalar(arg))
        pointers = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        self.library.host_run(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), pointers)


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    """A stand-in for :func:`snnkit.kernels.compile_kernel` that builds host libraries."""
    if CXX is None:
        pytest.skip("no C++ compiler")
    build, cache = tmp_path_factory.mktemp("slayer_host"), {}

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


def _close(got, ref, tol, what):
    got = got.detach().cpu()
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    err = (got - ref).abs().max().item() / max(ref.abs().max().item(), 1.0)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def _rand(gen, *shape, lo=-1.0, hi=1.0, dtype=torch.float64, device="cpu"):
    x = torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return x.to(device, dtype)


def _check_filters(dtype, device, steps=40, batch=3, neurons=5):
    gen = torch.Generator().manual_seed(5)
    x = _rand(gen, steps, batch, neurons, dtype=dtype, device=device)
    for shape in [(7,), (neurons, 7), (1,), (steps + 9,)]:
        kernel = _rand(gen, *shape, dtype=dtype, device=device)
        for fn in ("causal_filter", "correlate"):
            got = getattr(cuda, fn)(x, kernel, "conv")
            ref = getattr(filters, fn)(x.cpu(), kernel.cpu(), "conv")
            _close(got, ref, TOL[dtype], f"{fn} {shape}")


def _check_scans(dtype, device, steps=50, batch=4, neurons=33):
    gen = torch.Generator().manual_seed(9)
    u = _rand(gen, steps, batch, neurons, lo=-0.5, hi=1.5, dtype=dtype, device=device)
    alpha = _rand(gen, neurons, lo=0.7, hi=1.0, dtype=dtype, device=device)
    theta = _rand(gen, neurons, lo=0.5, hi=1.2, dtype=dtype, device=device)
    m = theta * 0.8
    cpu = [t.cpu() for t in (u, alpha, theta, m)]
    for multi, cap in ((False, None), (True, 3), (True, None)):
        got = cuda.spike_scan_exp(u, alpha, theta, m, cap, multi)
        ref = scan.spike_scan_exp(*cpu, cap, multi)
        for name, g, r in zip(("v", "spikes", "vpost"), got, ref, strict=True):
            _close(g, r, TOL[dtype], f"exp scan {name} (multi={multi})")
        assert ref[1].sum() > 0
    nu = torch.tensor(SRM(tau_ref=2.0).refractory_kernel(), dtype=dtype, device=device)
    got = cuda.spike_scan_fir(u, nu, theta)
    ref = scan.spike_scan_fir(cpu[0], nu.cpu(), cpu[2])
    for name, g, r in zip(("v", "spikes"), got, ref, strict=True):
        _close(g, r, TOL[dtype], f"fir scan {name}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_host_emulation_matches_torch(host_kernels, monkeypatch, dtype):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    _check_filters(dtype, "cpu")
    _check_scans(dtype, "cpu")


def test_host_emulated_layer_gradients_match_torch(host_kernels, monkeypatch):
    """A whole layer's forward and backward through the emulated kernels (LIF and SRM)."""
    from snnkit_slayer import backend

    def run(neuron, opts):
        torch.manual_seed(4)
        layer = Slayer().layer(neuron, 6, 7, weight_gain=3.0, filter="conv", **opts).double()
        x = (torch.rand(30, 2, 6, dtype=torch.float64) < 0.4).double()
        layer.reset_state()
        spikes = torch.cat([layer(p) for p in x.tensor_split(2)])
        (spikes * torch.linspace(-1, 1, 7, dtype=torch.float64)).sum().backward()
        return spikes.detach(), [p.grad.clone() for p in layer.parameters()]

    from snnkit import LIF

    cases = [(LIF(tau_mem=5.0, tau_syn=3.0), {"train_tau": True, "train_threshold": True})]
    cases.append((SRM(tau_sr=3.0), {}))
    for neuron, opts in cases:
        ref = run(neuron, opts)
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "compile_kernel", host_kernels)
            patch.setattr(backend, "_module", lambda x: cuda)
            got = run(neuron, opts)
        assert torch.equal(got[0], ref[0]) and got[0].sum() > 0
        for g, r in zip(got[1], ref[1], strict=True):
            _close(g, r, 1e-12, neuron.kind)


# --- on a GPU (pytest -m gpu) -------------------------------------------------------------------


def _require_gpu() -> None:
    pytest.importorskip("cupy")
    if not torch.cuda.is_available() or not cuda.available():
        pytest.skip("needs a CUDA device")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gpu_matches_torch(dtype):
    _require_gpu()
    _check_filters(dtype, "cuda")
    _check_scans(dtype, "cuda")
    _check_scans(dtype, "cuda", steps=300, batch=16, neurons=200)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_conformance(dtype, monkeypatch):
    _require_gpu()
    calls = []
    original = cuda.spike_scan_exp

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cuda, "spike_scan_exp", counting)
    failures = []
    for name in case_names(Slayer()):
        result = run_case(Slayer(), name, dtype, "cuda")
        if result.status != "skipped" and not result.passed:
            failures.append((name, result.status, result.detail))
    assert not failures
    assert calls, "the CUDA kernels never ran"
