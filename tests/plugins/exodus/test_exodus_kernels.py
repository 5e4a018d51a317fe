"""The EXODUS CUDA kernels: they compile (nvcc, CI), match the torch scan (host emulation,
CI; a real GPU with ``-m gpu``) and pass the conformance suite on device="cuda"."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

import pytest
import torch
from snnkit_exodus import Exodus, cuda, scan
from snnkit_exodus.scan import OutputGrads, ScanConfig

from snnkit import host, kernels
from snnkit.conformance import case_names, run_case
from snnkit.errors import SnnkitError
from snnkit.kernels import instantiate, nvcc_ptx
from snnkit.neurons import LIF, LIFCoefficients, LIFState
from snnkit.surrogates import BUILTIN_SURROGATES, Exponential, Gaussian, Rectangle

NVCC = shutil.which("nvcc")
KERNELS = ("exodus_forward", "exodus_backward")
NEEDS = (
    {"alpha": True, "beta": True, "theta": True},
    {"alpha": False, "beta": False, "theta": False},
)
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


# --- plumbing, no CUDA needed ----------------------------------------------------------


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit.kernels, snnkit_exodus.cuda; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ctype_and_read_source():
    assert kernels.ctype(torch.float32) == "float" and kernels.ctype(torch.float64) == "double"
    with pytest.raises(SnnkitError, match="float32 or float64"):
        kernels.ctype(torch.float16)
    source = kernels.read_source("snnkit_exodus", "kernels/exodus.cu")
    assert all(f"__global__ void {name}(" in source for name in KERNELS)
    assert isinstance(kernels.cupy_available(), bool)


# --- nvcc: every surrogate's kernels compile for sm_80 and sm_90 --------------------------


def _combined_source() -> str:
    """All built-in surrogates' kernel sources (one namespace each) and the forward-only one,
    each instantiated for float and double."""
    parts = [
        f"namespace s_{cls.name} {{\n{cuda.backward_source(cls())}{instantiate(KERNELS)}}}\n"
        for cls in BUILTIN_SURROGATES
    ]
    parts.append(f"namespace fwd {{\n{cuda.forward_source()}{instantiate(KERNELS[:1])}}}\n")
    return "\n".join(parts)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch):
    ptx = nvcc_ptx(_combined_source(), arch, cuda.OPTIONS)
    # 6 surrogates x 2 kernels x 2 dtypes, plus the forward-only build's 2
    assert ptx.count(".entry") == 4 * len(BUILTIN_SURROGATES) + 2


# --- shared inputs and comparison ----------------------------------------------------------


def _inputs(dtype, device, *, synaptic, multi, m_is_theta, steps=50, batch=4, neurons=33):
    gen = torch.Generator().manual_seed(1234 + 2 * synaptic + 4 * multi + 8 * m_is_theta)

    def rand(*shape, lo=-1.0, hi=1.0):
        x = torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
        return x.to(device, dtype)

    theta = rand(neurons, lo=0.5, hi=1.5)
    fwd = {
        "current": rand(steps, batch, neurons, lo=-0.6, hi=1.4),
        "v0": rand(batch, neurons),
        "i0": rand(batch, neurons) if synaptic else None,
        "a0": (rand(batch, neurons) > 0).to(dtype),
        "alpha": rand(neurons, lo=0.7, hi=1.0),
        "beta": rand(neurons, lo=0.4, hi=0.9) if synaptic else None,
        "theta": theta,
        "m": theta if m_is_theta else torch.full_like(theta, 0.6),
        "w_rec": None,
        "max_spikes": 3 if multi else None,
        "multi": multi,
    }
    grads = {
        "grad_spikes": rand(steps, batch, neurons),
        "g_vpost": rand(batch, neurons),
        "g_i": rand(batch, neurons) if synaptic else None,
        "g_a": None,  # feed-forward: the final spikes feed nothing (see test_final_spike_gradient)
    }
    return fwd, grads


def _named(fwd, surrogate=None, m_is_theta=False):
    state = LIFState(fwd["v0"], fwd["i0"], fwd["a0"])
    c = LIFCoefficients(fwd["alpha"], fwd["beta"], fwd["theta"], fwd["m"])
    return state, c, ScanConfig(surrogate, fwd["max_spikes"], fwd["multi"], m_is_theta)


def _forward(backend, fwd):
    """``backend``'s forward scan (the torch scan for ``scan``, else the kernels)."""
    state, c, config = _named(fwd)
    if backend is scan:
        return scan.forward_scan(fwd["current"], state, c, None, config)
    return cuda.forward_scan(backend, fwd["current"], state, c, config)


def _reverse(backend, fwd, grads, v_all, surrogate, need, m_is_theta):
    state, c, config = _named(fwd, surrogate, m_is_theta)
    g = OutputGrads(grads["grad_spikes"], grads["g_vpost"], grads["g_i"], grads["g_a"])
    if backend is scan:
        return scan.reverse_scan(v_all, g, state, c, None, config, need)
    return cuda.reverse_scan(backend, v_all, g, state, c, config, need)


def _assert_close(got, ref, tol, what):
    if ref is None:
        assert got is None, what
        return
    got = got.detach().cpu()
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    scale = max(ref.abs().max().item(), 1.0)
    err = (got - ref).abs().max().item() / scale
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def _check_against_scan(
    dtype,
    device,
    *,
    synaptic,
    multi,
    m_is_theta,
    need,
    surrogate,
    steps=50,
    batch=4,
    neurons=33,
    backend=cuda.CUDA,
):
    """``backend``'s forward_scan/reverse_scan on ``device`` equal the torch scan on CPU copies."""
    fwd, grads = _inputs(
        dtype,
        device,
        synaptic=synaptic,
        multi=multi,
        m_is_theta=m_is_theta,
        steps=steps,
        batch=batch,
        neurons=neurons,
    )
    cpu = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in fwd.items()}
    cpu_grads = {k: None if v is None else v.cpu() for k, v in grads.items()}
    tol = TOL[dtype]
    v_all, a_all, final = _forward(backend, fwd)
    ref_v, ref_a, ref_final = _forward(scan, cpu)
    _assert_close(v_all, ref_v, tol, "v")
    _assert_close(a_all, ref_a, tol, "spikes")
    for name, got, ref in zip(("vpost", "i", "a"), final, ref_final, strict=True):
        _assert_close(got, ref, tol, f"final {name}")
    assert multi or steps < 10 or set(ref_a.unique().tolist()) == {0.0, 1.0}  # it spikes

    # the backward from the same saved membrane (the kernel's), to isolate it
    v_ref_in = v_all.detach().cpu()
    got = _reverse(backend, fwd, grads, v_all, surrogate, need, m_is_theta)
    ref = _reverse(scan, cpu, cpu_grads, v_ref_in, surrogate, need, m_is_theta)
    assert got.keys() == ref.keys()
    for key in ref:
        _assert_close(got[key], ref[key], tol, f"grad {key}")


# --- host emulation: the CUDA kernels compiled by a C++ compiler (snnkit.host), one thread
# at a time, driven through cuda.py ------------------------------------------------------


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    """A stand-in for :func:`snnkit.kernels.compile_kernel` that emulates the launch grid."""
    if not host.available():
        pytest.skip("no C++ compiler")
    return functools.partial(host.compile_kernel, emulate=True)


@pytest.mark.parametrize("need", NEEDS, ids=["need-all", "need-none"])
@pytest.mark.parametrize("m_is_theta", [True, False], ids=["m=theta", "m-fixed"])
@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("synaptic", [False, True], ids=["plain", "synaptic"])
def test_host_emulation_matches_scan(host_kernels, monkeypatch, synaptic, multi, m_is_theta, need):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    for dtype in (torch.float64, torch.float32):
        _check_against_scan(
            dtype,
            "cpu",
            synaptic=synaptic,
            multi=multi,
            m_is_theta=m_is_theta,
            need=need,
            surrogate=Exponential(),
        )


@pytest.mark.parametrize("surrogate", [Gaussian(sigma=0.3), Rectangle(width=0.8)], ids=str)
def test_host_emulation_other_surrogates(host_kernels, monkeypatch, surrogate):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    _check_against_scan(
        torch.float64,
        "cpu",
        synaptic=True,
        multi=False,
        m_is_theta=True,
        need=NEEDS[0],
        surrogate=surrogate,
    )


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_host_emulation_short_sequences(host_kernels, monkeypatch, steps):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    for synaptic in (False, True):
        _check_against_scan(
            torch.float64,
            "cpu",
            synaptic=synaptic,
            multi=True,
            m_is_theta=False,
            need=NEEDS[0],
            surrogate=Exponential(),
            steps=steps,
            batch=1,
        )


def test_final_spike_gradient(host_kernels, monkeypatch):
    """A gradient on the final spikes a_{T-1} acts like one on the last step's spikes."""
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    fwd, grads = _inputs(torch.float64, "cpu", synaptic=True, multi=False, m_is_theta=True)
    v_all = _forward(cuda.CUDA, fwd)[0]
    g_a = torch.randn_like(fwd["v0"])
    moved = dict(grads, grad_spikes=grads["grad_spikes"].clone())
    moved["grad_spikes"][-1] += g_a
    got = _reverse(cuda.CUDA, fwd, dict(grads, g_a=g_a), v_all, Exponential(), NEEDS[0], True)
    ref = _reverse(cuda.CUDA, fwd, moved, v_all, Exponential(), NEEDS[0], True)
    for key in ref:
        _assert_close(got[key], ref[key], 1e-14, key)


# --- the CPU drivers (kernels/exodus_host.cpp): the same steps, loops turned for a CPU ------


@pytest.fixture(scope="module")
def needs_host():
    if not host.available():
        pytest.skip("no C++ compiler")


@pytest.mark.parametrize("need", NEEDS, ids=["need-all", "need-none"])
@pytest.mark.parametrize("m_is_theta", [True, False], ids=["m=theta", "m-fixed"])
@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("synaptic", [False, True], ids=["plain", "synaptic"])
def test_cpu_driver_matches_scan(needs_host, synaptic, multi, m_is_theta, need):
    # 3 x 300 columns: more than one chunk of 256, the last one partial
    for dtype in (torch.float64, torch.float32):
        _check_against_scan(
            dtype,
            "cpu",
            synaptic=synaptic,
            multi=multi,
            m_is_theta=m_is_theta,
            need=need,
            surrogate=Exponential(),
            batch=3,
            neurons=300,
            backend=cuda.HOST,
        )


@pytest.mark.parametrize(
    "need",
    [{"alpha": True, "beta": False, "theta": False}, {"alpha": False, "beta": True, "theta": True}],
    ids=str,
)
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_cpu_driver_short_sequences_and_mixed_needs(needs_host, steps, need):
    for surrogate in (Gaussian(sigma=0.3), Rectangle(width=0.8)):
        _check_against_scan(
            torch.float64,
            "cpu",
            synaptic=True,
            multi=True,
            m_is_theta=True,
            need=need,
            surrogate=surrogate,
            steps=steps,
            batch=2,
            backend=cuda.HOST,
        )


def test_cpu_driver_threads_give_identical_results(needs_host):
    fwd, grads = _inputs(
        torch.float64, "cpu", synaptic=True, multi=False, m_is_theta=True, batch=8, neurons=200
    )
    threads = torch.get_num_threads()
    runs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            v_all = _forward(cuda.HOST, fwd)[0]
            runs.append(_reverse(cuda.HOST, fwd, grads, v_all, Exponential(), NEEDS[0], True))
    finally:
        torch.set_num_threads(threads)
    for key, value in runs[0].items():
        assert value is None or torch.equal(value, runs[1][key]), key


def test_layers_on_cpu_use_the_driver_unless_disabled(needs_host, monkeypatch):
    from snnkit_exodus import method

    calls = []
    original = cuda.reverse_scan
    monkeypatch.setattr(
        cuda, "reverse_scan", lambda backend, *a: calls.append(backend) or original(backend, *a)
    )
    layer = Exodus().layer(LIF(tau_mem=10.0, tau_syn=5.0), 4, 6).double()
    x = torch.rand(20, 3, 4, dtype=torch.float64, requires_grad=True)
    layer(x).sum().backward()
    assert calls == [cuda.HOST]
    # SNNKIT_HOST_KERNELS=0: the torch scan; backend="cpu" then says why it cannot run
    monkeypatch.setenv("SNNKIT_HOST_KERNELS", "0")
    method._host_works.cache_clear()
    try:
        config = ScanConfig(Exponential(), None, False, True)
        one = torch.ones(4, dtype=torch.float64)
        c = LIFCoefficients(one, None, one, one)
        assert method._kernels(x, c, None, config) is None
        with pytest.raises(SnnkitError, match="backend='cpu'.*C\\+\\+ compiler"):
            method._kernels(x, c, None, config._replace(backend="cpu"))
    finally:
        monkeypatch.delenv("SNNKIT_HOST_KERNELS")
        method._host_works.cache_clear()


# --- on a GPU (pytest -m gpu) -----------------------------------------------------------------


def _require_gpu() -> None:
    pytest.importorskip("cupy")
    if not torch.cuda.is_available() or not kernels.cupy_available():
        pytest.skip("needs a CUDA device")


@pytest.mark.gpu
@pytest.mark.parametrize("need", NEEDS, ids=["need-all", "need-none"])
@pytest.mark.parametrize("m_is_theta", [True, False], ids=["m=theta", "m-fixed"])
@pytest.mark.parametrize("multi", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("synaptic", [False, True], ids=["plain", "synaptic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gpu_matches_scan(dtype, synaptic, multi, m_is_theta, need):
    _require_gpu()
    _check_against_scan(
        dtype,
        "cuda",
        synaptic=synaptic,
        multi=multi,
        m_is_theta=m_is_theta,
        need=need,
        surrogate=Exponential(),
    )


@pytest.mark.gpu
@pytest.mark.parametrize("surrogate", [cls() for cls in BUILTIN_SURROGATES], ids=str)
def test_gpu_every_surrogate(surrogate):
    _require_gpu()
    for dtype in (torch.float32, torch.float64):
        _check_against_scan(
            dtype,
            "cuda",
            synaptic=True,
            multi=False,
            m_is_theta=True,
            need=NEEDS[0],
            surrogate=surrogate,
        )


@pytest.mark.gpu
def test_gpu_compile_cache():
    _require_gpu()
    source = cuda.forward_source()
    first = kernels.compile_kernel(source, "exodus_forward", torch.float32, cuda.OPTIONS)
    assert kernels.compile_kernel(source, "exodus_forward", torch.float32, cuda.OPTIONS) is first
    other = kernels.compile_kernel(source, "exodus_forward", torch.float64, cuda.OPTIONS)
    assert other is not first and other.dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_conformance(dtype, monkeypatch):
    _require_gpu()
    calls = []
    original = cuda.reverse_scan

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cuda, "reverse_scan", counting)
    failures = []
    for name in case_names(Exodus()):
        result = run_case(Exodus(), name, dtype, "cuda")
        if result.status != "skipped" and not result.passed:
            failures.append((name, result.status, result.detail))
    assert not failures
    assert calls, "the CUDA kernels never ran"
