"""EventProp kernels: they compile (nvcc), their logic matches the torch path (host
emulation: the .cu compiled as C++ and run thread by thread), the CPU drivers match it too
and are what CPU layers use, and they run on a GPU (-m gpu)."""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
from fixtures.broken_kernels import broken_cpu_backend
from snnkit_eventprop import cuda
from snnkit_eventprop.adjoint import adjoint_layer
from snnkit_eventprop.simulate import LayerConfig, run_layer

from snnkit import LIF, host, kernels
from snnkit.errors import SnnkitError
from snnkit.kernels import instantiate, nvcc_ptx

NVCC = shutil.which("nvcc")
KERNELS = (
    "eventprop_forward",
    "eventprop_backward",
    "eventprop_recurrent_forward",
    "eventprop_recurrent_backward",
    "eventprop_grid_forward",
    "eventprop_grid_backward",
)


def test_importing_the_kernels_never_imports_cupy():
    code = "import sys, snnkit_eventprop.cuda, snnkit_eventprop.plugin; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvcc(arch):
    ptx = nvcc_ptx(cuda.source() + instantiate(KERNELS), arch, cuda._OPTIONS)
    assert ptx.count(".entry") == 2 * len(KERNELS)


# --- host emulation: the CUDA kernels compiled as C++ (snnkit.host), thread by thread ------


@pytest.fixture(scope="module")
def needs_host():
    if not host.available():
        pytest.skip("no C++ compiler")


def _case(dtype, device, reset="subtract", taus=(10.0, 5.0), seed=0, recurrent=False):
    gen = torch.Generator().manual_seed(seed)
    pre = (torch.rand(3, 5, 3, generator=gen, dtype=torch.float64) * 30).sort(-1).values
    pre[0, 1, 2] = float("inf")  # padding
    w = (torch.randn(7, 5, generator=gen, dtype=torch.float64) + 0.8) * 1.2
    r = torch.randn(7, 7, generator=gen, dtype=torch.float64) * 0.5 if recurrent else None
    config = LayerConfig(taus[0], taus[1], 1.0, reset, 0.0, 40.0, 64)
    grad = lambda times: torch.randn(times.shape, generator=gen, dtype=torch.float64)  # noqa: E731
    r = None if r is None else r.to(device, dtype)
    return pre.to(device, dtype), w.to(device, dtype), r, config, grad


CASES = [
    {},
    {"reset": "zero"},
    {"taus": (5.0, 5.0)},
    {"taus": (10.0, 3.0)},
    {"recurrent": True},
    {"recurrent": True, "reset": "zero", "taus": (10.0, 3.0)},
    {"recurrent": True, "taus": (5.0, 5.0)},
]
CASE_IDS = [
    "subtract",
    "zero",
    "equal-taus",
    "general-taus",
    "recurrent",
    "recurrent-zero-general-taus",
    "recurrent-equal-taus",
]
TOL = {torch.float64: 1e-10, torch.float32: 2e-3}


EMULATED = kernels.Backend("cuda", functools.partial(host.compile_kernel, emulate=True))


def _compare(dtype, device, backend, **kw):
    pre, w, r, config, grad = _case(dtype, device, **kw)
    r_cpu = None if r is None else r.cpu()
    want = run_layer(pre.cpu(), w.cpu(), r_cpu, config)
    got = cuda.run(backend, pre, w, r, config)
    assert torch.equal(got.counts.cpu(), want.counts)
    assert int(want.counts.sum()) > 10 and want.times.shape[-1] > 1
    finite = torch.isfinite(want.times)
    tol = TOL[dtype]
    assert (got.times.cpu()[finite] - want.times[finite]).abs().max() <= tol * 40
    g = grad(want.times).to(dtype)
    wanted = adjoint_layer(want, g, w.cpu(), r_cpu, config)
    gotten = cuda.adjoint(backend, got, g.to(device), w, r, config)
    assert (gotten[2] is None) == (r is None)
    for a, b in zip(gotten, wanted, strict=True):
        if b is not None:
            assert (a.cpu() - b).abs().max() <= tol * b.abs().max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize(
    "kw",
    CASES,
    ids=CASE_IDS,
)
def test_host_emulation_matches_torch(needs_host, dtype, kw):
    _compare(dtype, "cpu", EMULATED, **kw)


def test_host_emulation_spike_bound(needs_host):
    pre = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.full((2, 1), 50.0, dtype=torch.float64)
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 1000)
    record = cuda.run_layer(EMULATED, pre, w, config)  # the buffer is re-sized past _CAP
    assert record.times.shape[-1] > cuda._CAP
    assert torch.equal(record.counts, run_layer(pre, w, None, config).counts)
    small = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 3)
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        cuda.run_layer(EMULATED, pre, w, small)


# --- the CPU drivers (kernels/eventprop_host.cpp): the same per-neuron functions ------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize(
    "kw",
    CASES,
    ids=CASE_IDS,
)
def test_cpu_driver_matches_torch(needs_host, dtype, kw):
    _compare(dtype, "cpu", cuda.HOST, **kw)


@pytest.mark.parametrize(
    "old,new",
    [
        ("b < batch; b += groups", "b + 1 < batch; b += groups"),  # drops a sample
        ("(grad[pk] - a_v * (theta - v_after) / tm)", "grad[pk]"),  # the reset term dropped
        ("times[count] = t + s;", "times[count] = t + s + s * T(1e-6);"),  # a biased solver
    ],
    ids=["driver", "jump", "forward"],
)
def test_comparison_catches_a_broken_cpu_driver(needs_host, old, new):
    with pytest.raises(AssertionError):
        _compare(torch.float64, "cpu", broken_cpu_backend(old, new))


@pytest.mark.parametrize(
    "old,new",
    [
        (
            "(grad[slot] - a_v[n] * (theta - v_after) / tm - rec)",
            "(grad[slot] - a_v[n] * (theta - v_after) / tm)",
        ),
        ("ep_accumulate(&d_recurrent[mn], a_i[m]);", "ep_accumulate(&d_recurrent[mn], a_v[m]);"),
        ("i[m] += recurrent[static_cast<long long>(m) * neurons + n];", "i[m] += T(0);"),
        (
            "b < batch; b += groups) {\n            const long long rows = b * neurons, logs = b * log_len;",
            "b + 1 < batch; b += groups) {\n            const long long rows = b * neurons, logs = b * log_len;",
        ),
    ],
    ids=["recurrent-jump", "recurrent-weight-gradient", "recurrent-forward", "driver"],
)
def test_comparison_catches_a_broken_recurrent_kernel(needs_host, old, new):
    with pytest.raises(AssertionError):
        _compare(torch.float64, "cpu", broken_cpu_backend(old, new), recurrent=True)


def test_cpu_driver_spike_bound(needs_host):
    pre = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.full((2, 1), 50.0, dtype=torch.float64)
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 1000)
    record = cuda.run_layer(cuda.HOST, pre, w, config)
    assert record.times.shape[-1] > cuda._CAP
    want = run_layer(pre, w, None, config)
    assert torch.equal(record.counts, want.counts)
    assert (record.times - want.times).abs().max() < 1e-10
    small = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 3)
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        cuda.run_layer(cuda.HOST, pre, w, small)


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_cpu_driver_threads_give_identical_results(needs_host, recurrent):
    gen = torch.Generator().manual_seed(5)
    pre = (torch.rand(40, 6, 2, generator=gen, dtype=torch.float64) * 30).sort(-1).values
    w = (torch.randn(50, 6, generator=gen, dtype=torch.float64) + 0.8) * 1.2
    r = torch.randn(50, 50, generator=gen, dtype=torch.float64) * 0.1 if recurrent else None
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 64)
    threads, runs = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            record = cuda.run(cuda.HOST, pre, w, r, config)
            g = torch.randn(
                record.times.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
            )
            grads = cuda.adjoint(cuda.HOST, record, g, w, r, config)
            runs.append((record.times, *(x for x in grads if x is not None)))
    finally:
        torch.set_num_threads(threads)
    assert int(torch.isfinite(runs[0][0]).sum()) > 100  # 40 samples: > 32 groups
    for run in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(run, runs[0], strict=True))


def _network_grads(shape, readout, dtype, seed=0):
    from snnkit_eventprop.method import EventProp

    from snnkit.events import Events

    torch.manual_seed(seed)
    neuron = LIF(tau_mem=10.0, tau_syn=5.0)
    net = EventProp().network(shape, neuron, readout=readout).to(dtype)
    pre = (torch.rand(6, net.layers[0].in_features, 2, dtype=dtype) * 20).sort(-1).values
    pre[0, 0, 1] = math.inf
    out = net(Events(pre, 40.0))
    gen = torch.Generator().manual_seed(seed + 1)
    loss = sum(
        (
            torch.where(torch.isfinite(s), s, 0) * torch.randn(s.shape, generator=gen, dtype=dtype)
        ).sum()
        for s in out.spikes
    )
    if out.readout is not None:
        loss = loss + out.readout.mean().square().sum()
    loss.backward()
    return [s.detach() for s in out.spikes], [p.grad for p in net.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("readout", ["li", "spiking"])
@pytest.mark.parametrize("shape", ["4-9-3", "4-8-7-3"], ids=["one-hidden", "two-hidden"])
def test_cpu_network_equals_torch_path(needs_host, monkeypatch, shape, readout, dtype):
    from snnkit_eventprop import function

    from snnkit import LI

    neuron = LIF(tau_mem=10.0, tau_syn=5.0) if readout == "spiking" else LI(tau_mem=10.0)
    calls, original = [], function._backend

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(function, "_backend", spy)
    got_s, got_g = _network_grads(shape, neuron, dtype)
    assert cuda.HOST in calls and None not in calls
    monkeypatch.setenv("SNNKIT_HOST_KERNELS", "0")
    function._host_works.cache_clear()
    try:
        want_s, want_g = _network_grads(shape, neuron, dtype)
    finally:
        function._host_works.cache_clear()
    assert calls[-1] is None
    tol = 1e-10 if dtype == torch.float64 else 2e-3
    assert sum(int(torch.isfinite(s).sum()) for s in want_s) > 20
    for a, b in zip(got_s, want_s, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
        f = torch.isfinite(b)
        assert (a[f] - b[f]).abs().max() <= tol * 40
    for a, b in zip(got_g, want_g, strict=True):
        assert (a - b).abs().max() <= tol * b.abs().max()


def test_conformance_runs_through_the_cpu_kernels(needs_host, monkeypatch):
    from snnkit_eventprop.method import EventProp

    from snnkit.conformance import run_case

    calls, original = [], cuda.adjoint

    def spy(backend, *args):
        calls.append(backend)
        return original(backend, *args)

    monkeypatch.setattr(cuda, "adjoint", spy)
    for case, dtype in (("deep", "float64"), ("recurrent", "float64"), ("recurrent", "float32")):
        calls.clear()
        result = run_case(EventProp(), case, dtype)
        assert result.passed, result.detail
        assert calls and all(c is cuda.HOST for c in calls)


def test_conformance_catches_a_broken_recurrent_jump_in_the_cpu_kernels(needs_host, monkeypatch):
    from snnkit_eventprop.method import EventProp

    from snnkit.conformance import run_case

    old = "(grad[slot] - a_v[n] * (theta - v_after) / tm - rec)"
    monkeypatch.setattr(cuda, "HOST", broken_cpu_backend(old, old.replace(" - rec", "")))
    result = run_case(EventProp(), "recurrent", "float64")
    assert not result.passed


def test_cpu_kernels_fall_back_to_torch_with_a_warning(monkeypatch):
    from snnkit_eventprop import function

    def broken(*args, **kwargs):
        raise SnnkitError("compiling a CPU kernel failed (g++): error: test")

    monkeypatch.setattr(host, "available", lambda: True)
    monkeypatch.setattr(host, "compile_kernel", broken)
    function._host_works.cache_clear()
    try:
        with pytest.warns(UserWarning, match="EventProp CPU kernels unavailable"):
            assert function._backend(torch.zeros(1, 1, 1), {}) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # probed once: no second warning
            assert function._backend(torch.zeros(1, 1, 1), {}) is None
    finally:
        function._host_works.cache_clear()


def test_recurrent_cpu_driver_spike_bound(needs_host):
    pre = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.full((2, 1), 50.0, dtype=torch.float64)
    r = torch.full((2, 2), 0.3, dtype=torch.float64)
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 1000)
    record = cuda.run(cuda.HOST, pre, w, r, config)  # the buffer and the log are re-sized
    assert record.times.shape[-1] > cuda._CAP
    want = run_layer(pre, w, r, config)
    assert torch.equal(record.counts, want.counts)
    assert (record.times - want.times).abs().max() < 1e-10
    small = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 3)
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        cuda.run(cuda.HOST, pre, w, r, small)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_gpu_matches_torch(dtype):
    if not kernels.cupy_available():
        pytest.skip("needs CuPy and a CUDA device")
    _compare(dtype, "cuda", cuda.CUDA)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_gpu_equals_cpu_driver(dtype):
    if not kernels.cupy_available():
        pytest.skip("needs CuPy and a CUDA device")
    _compare(dtype, "cuda", cuda.CUDA, reset="zero")
    _compare(dtype, "cpu", cuda.HOST, reset="zero")


@pytest.mark.gpu
def test_gpu_conformance():
    if not kernels.cupy_available():
        pytest.skip("needs CuPy and a CUDA device")
    from snnkit_eventprop.method import EventProp

    from snnkit.conformance import check

    results = check(EventProp(), ["float64"], device="cuda")
    assert all(r.passed for r in results), [(r.case, r.detail) for r in results if not r.passed]


def test_the_backend_option_chooses_the_kernels(needs_host):
    from snnkit_eventprop import function

    x = torch.zeros(1, 1, 1)
    assert function._backend(x, {"backend": "auto"}) is cuda.HOST
    assert function._backend(x, {"backend": "cpu"}) is cuda.HOST
    assert function._backend(x, {"backend": "torch"}) is None
    with pytest.raises(SnnkitError, match="backend='cuda': eventprop's tensors are on cpu"):
        function._backend(x, {"backend": "cuda"})


def test_a_forced_torch_backend_runs_no_kernel(needs_host, monkeypatch):
    from snnkit_eventprop.method import EventProp

    from snnkit.events import Events

    monkeypatch.setattr(cuda, "adjoint", lambda *a: pytest.fail("a kernel ran"))
    torch.manual_seed(0)
    neuron = LIF(tau_mem=10.0, tau_syn=5.0)
    net = EventProp().network("3-4-2", neuron, backend="torch", weight_mean=2.0)
    out = net(Events(torch.rand(2, 3, 1) * 10, 40.0))
    assert int(torch.isfinite(out.spikes[0]).sum()) > 0
    out.readout.mean().sum().backward()


@pytest.mark.parametrize(
    "options,message",
    [
        ({"backend": "gpu"}, "backend='gpu': eventprop runs on auto, cuda, cpu, torch; use one"),
        ({"backend": "gpu", "mode": "grid", "dt": 0.1}, "backend='gpu': eventprop runs on"),
    ],
    ids=["unknown", "grid"],
)
def test_a_bad_backend_option_is_one_line_when_the_network_is_built(options, message):
    from snnkit_eventprop.method import EventProp

    with pytest.raises(SnnkitError, match=message) as raised:
        EventProp().network("3-4-2", LIF(tau_mem=10.0, tau_syn=5.0), **options)
    assert "\n" not in str(raised.value)
