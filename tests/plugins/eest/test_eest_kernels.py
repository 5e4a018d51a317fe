"""EEST kernels: they compile (nvcc sm_80/sm_90), their logic matches the torch path (host
emulation: the .cu compiled as C++ and run thread by thread), the CPU drivers match it too
and are what CPU layers use, broken sources are caught, and they run on a GPU (-m gpu)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

import pytest
import torch
from snnkit_eest import cuda, function
from snnkit_eest.backward import backward_layer
from snnkit_eest.forward import LayerConfig, run_layer

from snnkit import host, kernels
from snnkit.errors import SnnkitError
from snnkit.kernels import instantiate, nvcc_ptx

NVCC = shutil.which("nvcc")
KERNELS = ("eest_forward", "eest_backward")
TOL = {torch.float64: 1e-10, torch.float32: 2e-3}


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_eest.cuda, snnkit_eest.plugin; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch):
    ptx = nvcc_ptx(cuda.source() + instantiate(KERNELS), arch, cuda._OPTIONS)
    assert ptx.count(".entry") == 4


@pytest.fixture(scope="module")
def needs_host():
    if not host.available():
        pytest.skip("no C++ compiler")


EMULATED = kernels.Backend("cuda", functools.partial(host.compile_kernel, emulate=True))


def _case(dtype, device, limit=0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pre = (torch.rand(3, 5, 3, generator=gen, dtype=torch.float64) * 30).sort(-1).values
    pre[0, 1, 2] = float("inf")  # padding
    w = (torch.randn(7, 5, generator=gen, dtype=torch.float64) + 0.8) * 1.2
    config = LayerConfig(10.0, 1.0, 40.0, 64, spike_limit=limit)
    grad = torch.randn(3, 7, 64, generator=gen, dtype=torch.float64)
    return pre.to(device, dtype), w.to(device, dtype), config, grad


def _compare(dtype, device, backend, limit=0):
    pre, w, config, grad = _case(dtype, device, limit)
    want = run_layer(pre.cpu(), w.cpu(), config)
    got = cuda.run_layer(backend, pre, w, config)
    assert torch.equal(got.counts.cpu(), want.counts)
    assert int(want.counts.sum()) > 10 and (limit or want.times.shape[-1] > 1)
    finite = torch.isfinite(want.times)
    tol = TOL[dtype]
    assert (got.times.cpu()[finite] - want.times[finite]).abs().max() <= tol * 40
    g = grad[..., : want.times.shape[-1]].to(dtype)
    d_arr, d_w = backward_layer(want, g, w.cpu(), config)
    got_arr, got_w = cuda.backward_layer(backend, got, g.to(device), w, config)
    errors = [
        ((a.cpu() - b).abs().max() / b.abs().max()).item()
        for a, b in ((got_arr, d_arr), (got_w, d_w))
    ]
    assert max(errors) <= tol, errors
    return errors


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("limit", [0, 1], ids=["multi", "single"])
@pytest.mark.parametrize("where", ["emulated", "driver"])
def test_kernels_match_torch(needs_host, dtype, limit, where):
    _compare(dtype, "cpu", EMULATED if where == "emulated" else cuda.HOST, limit)


@pytest.mark.parametrize(
    "old,new",
    [
        ("grad[pk] + theta / tau * acc_b", "grad[pk]"),  # the reset coupling dropped
        ("acc_a - acc_b);", "acc_b - acc_a);"),  # dt/da and dt/db swapped (sign flip)
        ("b < batch; b += groups", "b + 1 < batch; b += groups"),  # a sample dropped
        ("times[count] = t + s;", "times[count] = t + s + s * T(1e-6);"),  # a biased root
    ],
    ids=["coupling", "sign", "driver", "forward"],
)
def test_comparison_catches_a_broken_kernel(needs_host, old, new):
    def compile_broken(src, name, dtype, options):
        assert old in src
        return host.compile_kernel(src.replace(old, new), name, dtype, options)

    broken = kernels.Backend("cpu", compile_broken, "_host", cuda.host_source, cuda._GROUPS)
    with pytest.raises(AssertionError):
        _compare(torch.float64, "cpu", broken)


@pytest.mark.parametrize("backend", [EMULATED, cuda.HOST], ids=["emulated", "driver"])
def test_kernel_spike_bound(needs_host, backend):
    pre = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.full((2, 1), 50.0, dtype=torch.float64)
    config = LayerConfig(10.0, 1.0, 40.0, 1000)
    record = cuda.run_layer(backend, pre, w, config)  # the buffer is re-sized past _CAP
    assert record.times.shape[-1] > cuda._CAP
    want = run_layer(pre, w, config)
    assert torch.equal(record.counts, want.counts)
    assert (record.times - want.times).abs().max() < 1e-10
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        cuda.run_layer(backend, pre, w, LayerConfig(10.0, 1.0, 40.0, 3))


def test_cpu_layers_use_the_driver(needs_host):
    assert function._backend(torch.zeros(1, 1, 1), {}) is cuda.HOST
    assert function._backend(torch.zeros(1, 1, 1), {"backend": "torch"}) is None


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_cuda_kernels_match_torch(dtype):
    if not (torch.cuda.is_available() and kernels.cupy_available()):
        pytest.skip("needs a CUDA GPU and CuPy")
    _compare(dtype, "cuda", cuda.CUDA)
    _compare(dtype, "cuda", cuda.CUDA, limit=1)
