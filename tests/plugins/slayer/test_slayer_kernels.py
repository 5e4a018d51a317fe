"""The SLAYER CUDA kernels: they compile (nvcc), match the torch code (host emulation on
CPU; a real GPU with ``-m gpu``) and pass the conformance suite on device="cuda"."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

import pytest
import torch
from snnkit_slayer import SRM, Slayer, cuda, filters, scan

from snnkit import host, kernels
from snnkit.conformance import case_names, run_case
from snnkit.kernels import instantiate, nvcc_ptx

NVCC = shutil.which("nvcc")
KERNELS = ("slayer_filter", "slayer_spikes_exp", "slayer_spikes_fir")
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_slayer, snnkit_slayer.cuda; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch):
    ptx = nvcc_ptx(cuda.source() + instantiate(KERNELS), arch, cuda._OPTIONS)
    assert ptx.count(".entry") == 2 * len(KERNELS)


# --- host emulation: the .cu source compiled by a C++ compiler, driven through cuda.py ---------


@pytest.fixture(scope="module")
def host_kernels():
    """A stand-in for :func:`snnkit.kernels.compile_kernel` that emulates the launch grid."""
    if not host.available():
        pytest.skip("no C++ compiler")
    return functools.partial(host.compile_kernel, emulate=True)


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
            patch.setattr(backend, "_gpu", lambda x, choice: cuda)
            got = run(neuron, opts)
        assert torch.equal(got[0], ref[0]) and got[0].sum() > 0
        for g, r in zip(got[1], ref[1], strict=True):
            _close(g, r, 1e-12, neuron.kind)


# --- on a GPU (pytest -m gpu) -------------------------------------------------------------------


def _require_gpu() -> None:
    pytest.importorskip("cupy")
    if not torch.cuda.is_available() or not kernels.cupy_available():
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
