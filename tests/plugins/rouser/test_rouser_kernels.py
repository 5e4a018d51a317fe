"""The Rouser CUDA kernels: they compile (nvcc), match the torch scan (host emulation on
CPU; a real GPU with ``-m gpu``) and pass the conformance suite on device="cuda"."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
import sys

import pytest
import torch
from snnkit_rouser import Rouser, RouserExponential, cuda, scan

from snnkit import host, kernels
from snnkit.conformance.raster import DEFAULT_NEURON, RASTER_CASES, run_raster_case
from snnkit.kernels import instantiate, nvcc_ptx
from snnkit.surrogates import BUILTIN_SURROGATES, Exponential, Rectangle

NVCC = shutil.which("nvcc")
KERNELS = ("rouser_forward", "rouser_backward")
SURROGATES = (RouserExponential, *BUILTIN_SURROGATES)
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
# (reset_zero, through, multi, m_is_theta): the combinations a layer can produce
VARIANTS = [
    (False, False, False, True),
    (False, True, False, True),
    (False, True, True, False),
    (False, False, True, True),
    (True, False, False, True),
    (True, True, False, True),
]


def _ids(v):
    reset_zero, through, multi, m_is_theta = v
    return "-".join(
        [
            "zero" if reset_zero else "subtract",
            "through" if through else "detached",
            "multi" if multi else "single",
            "m=theta" if m_is_theta else "m-fixed",
        ]
    )


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_rouser, snnkit_rouser.cuda; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _combined_source() -> str:
    """Every surrogate's backward source (one namespace each) and the forward-only one,
    each instantiated for float and double."""
    parts = [
        f"namespace s_{cls.name} {{\n{cuda.backward_source(cls())}\n{instantiate(KERNELS)}}}\n"
        for cls in SURROGATES
    ]
    parts.append(f"namespace fwd {{\n{cuda.forward_source()}\n{instantiate(KERNELS[:1])}}}\n")
    return "\n".join(parts)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch):
    ptx = nvcc_ptx(_combined_source(), arch, cuda.OPTIONS)
    assert ptx.count(".entry") == 4 * len(SURROGATES) + 2


# --- the kernels against the torch scan -------------------------------------------------------


def _inputs(dtype, device, variant, *, synaptic, shared, steps=50, batch=4, neurons=33):
    reset_zero, through, multi, m_is_theta = variant
    gen = torch.Generator().manual_seed(99 + 2 * synaptic + 4 * multi + 8 * reset_zero)

    def rand(*shape, lo=-1.0, hi=1.0):
        x = torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
        return x.to(device, dtype)

    theta = rand(1 if shared else neurons, lo=0.5, hi=1.5)
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
        "dyn": scan.Dynamics(reset_zero, through, multi, 3 if multi else None, m_is_theta),
    }
    grads = {
        "g_spikes": rand(steps, batch, neurons),
        "g_u": rand(batch, neurons),
        "g_i": rand(batch, neurons) if synaptic else None,
        "g_a": rand(batch, neurons),
    }
    return fwd, grads


def _reverse(module, fwd, grads, v_all, surrogate, need):
    f = fwd
    return module.reverse_scan(
        v_all, grads["g_spikes"], grads["g_u"], grads["g_i"], grads["g_a"], f["v0"], f["i0"],
        f["a0"], f["alpha"], f["beta"], f["theta"], f["m"], None, surrogate, f["dyn"], need,
    )  # fmt: skip


def _assert_close(got, ref, tol, what):
    if ref is None:
        assert got is None, what
        return
    got = got.detach().cpu()
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    err = (got - ref).abs().max().item() / max(ref.abs().max().item(), 1.0)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def _check_against_scan(dtype, device, variant, *, synaptic, shared, need, surrogate, steps=50):
    fwd, grads = _inputs(dtype, device, variant, synaptic=synaptic, shared=shared, steps=steps)
    cpu = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in fwd.items()}
    cpu_grads = {k: None if v is None else v.cpu() for k, v in grads.items()}
    tol = TOL[dtype]
    v_all, a_all, final = cuda.forward_scan(**fwd)
    ref_v, ref_a, ref_final = scan.forward_scan(**cpu)
    _assert_close(v_all, ref_v, tol, "v")
    _assert_close(a_all, ref_a, tol, "spikes")
    for name, got, ref in zip(("u", "i", "a"), final, ref_final, strict=True):
        _assert_close(got, ref, tol, f"final {name}")
    assert steps < 10 or 0 < (ref_a > 0).double().mean() < 1  # it spikes, not always
    # the backward from the same saved membrane, to isolate it
    got = _reverse(cuda, fwd, grads, v_all, surrogate, need)
    ref = _reverse(scan, cpu, cpu_grads, v_all.detach().cpu(), surrogate, need)
    assert got.keys() == ref.keys()
    for key in ref:
        _assert_close(got[key], ref[key], tol, f"grad {key}")


@pytest.fixture(scope="module")
def host_kernels():
    """A stand-in for :func:`snnkit.kernels.compile_kernel` that emulates the launch grid."""
    if not host.available():
        pytest.skip("no C++ compiler")
    return functools.partial(host.compile_kernel, emulate=True)


NEED_ALL = {"alpha": True, "beta": True, "theta": True}
NEED_THETA = {"alpha": False, "beta": False, "theta": True}


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
@pytest.mark.parametrize("synaptic", [False, True], ids=["plain", "synaptic"])
def test_host_emulation_matches_scan(host_kernels, monkeypatch, variant, synaptic):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    for dtype in (torch.float64, torch.float32):
        for shared, need in ((False, NEED_ALL), (True, NEED_THETA)):
            _check_against_scan(
                dtype,
                "cpu",
                variant,
                synaptic=synaptic,
                shared=shared,
                need=need,
                surrogate=RouserExponential(),
            )


@pytest.mark.parametrize("surrogate", [Exponential(), Rectangle(width=0.8)], ids=str)
def test_host_emulation_other_surrogates_and_short_sequences(host_kernels, monkeypatch, surrogate):
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    for steps in (1, 2, 3, 50):
        _check_against_scan(
            torch.float64,
            "cpu",
            VARIANTS[1],
            synaptic=True,
            shared=False,
            need=NEED_ALL,
            surrogate=surrogate,
            steps=steps,
        )


def test_host_emulation_runs_the_layer(host_kernels, monkeypatch):
    """The layer's CUDA path (kernels emulated on the host) gives the torch path's gradients."""
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    from snnkit_rouser import method

    torch.manual_seed(5)
    layer = (
        Rouser()
        .layer(
            DEFAULT_NEURON,
            5,
            7,
            train_threshold=True,
            reset_grad="through",
            weight_gain=3.0,
        )
        .double()
    )
    x = (torch.rand(30, 2, 5, dtype=torch.float64) < 0.4).double()
    results = []
    for backend in (cuda, scan):
        monkeypatch.setattr(method, "_backend", lambda *args, b=backend: b)
        layer.reset_state()
        spikes = layer(x)
        results.append(
            torch.autograd.grad(spikes.sum() + layer.state.v.sum(), list(layer.parameters()))
        )
    for g, r in zip(*results, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


# --- on a GPU (pytest -m gpu) -----------------------------------------------------------------


def _require_gpu() -> None:
    pytest.importorskip("cupy")
    if not torch.cuda.is_available() or not kernels.cupy_available():
        pytest.skip("needs a CUDA device")


@pytest.mark.gpu
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
@pytest.mark.parametrize("synaptic", [False, True], ids=["plain", "synaptic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gpu_matches_scan(dtype, synaptic, variant):
    _require_gpu()
    for shared in (False, True):
        _check_against_scan(
            dtype,
            "cuda",
            variant,
            synaptic=synaptic,
            shared=shared,
            need=NEED_ALL,
            surrogate=RouserExponential(),
        )


@pytest.mark.gpu
@pytest.mark.parametrize("surrogate", [cls() for cls in SURROGATES], ids=str)
def test_gpu_every_surrogate(surrogate):
    _require_gpu()
    for dtype in (torch.float32, torch.float64):
        _check_against_scan(
            dtype,
            "cuda",
            VARIANTS[0],
            synaptic=True,
            shared=False,
            need=NEED_ALL,
            surrogate=surrogate,
        )


@pytest.mark.gpu
@pytest.mark.parametrize("reset_grad", ["detached", "through"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_conformance(dtype, reset_grad, monkeypatch):
    _require_gpu()
    calls = []
    original = cuda.reverse_scan

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cuda, "reverse_scan", counting)
    failures = []
    for case in RASTER_CASES:
        options = {**case.layer_options, "train_threshold": True, "reset_grad": reset_grad}
        result = run_raster_case(
            Rouser(), dataclasses.replace(case, layer_options=options), dtype, "cuda"
        )
        if not result.passed:
            failures.append((case.name, result.status, result.detail))
    assert not failures
    assert calls, "the CUDA kernels never ran"


@pytest.mark.parametrize(
    "line,broken",
    [
        ("acc_theta -= s * lam_a;", "acc_theta += s * lam_a;"),  # dS/dTh = +dS/dV
        ("acc_theta -= a_t * lam_u;", "(void)0;"),  # threshold as reset amount forgotten
        ("const T reset = through ?", "const T reset = false ?"),  # reset gradient dropped
    ],
)
def test_host_emulation_catches_a_broken_kernel(host_kernels, monkeypatch, line, broken):
    """The comparison with the torch scan is sharp enough to see a one-line kernel bug."""
    source = cuda._source()
    assert line in source
    monkeypatch.setattr(kernels, "compile_kernel", host_kernels)
    monkeypatch.setattr(cuda, "_source", lambda: source.replace(line, broken))
    with pytest.raises(AssertionError, match="grad"):
        _check_against_scan(
            torch.float64,
            "cpu",
            VARIANTS[1],
            synaptic=False,
            shared=False,
            need=NEED_ALL,
            surrogate=RouserExponential(),
        )
