"""Grid mode: time-stepped EventProp whose gradient converges to the event-exact one as dt -> 0."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from fixtures.broken_kernels import broken_cpu_backend
from snnkit_eventprop import cuda, grid_kernels
from snnkit_eventprop.grid import _GridLayer, schedule
from snnkit_eventprop.grid_kernels import grid_layer
from snnkit_eventprop.method import EventProp
from snnkit_eventprop.simulate import LayerConfig

from snnkit import LI, LIF, host, kernels
from snnkit.errors import SnnkitError
from snnkit.events import Events

F64 = torch.float64
NEURON = LIF(tau_mem=10.0, tau_syn=5.0)
DTS = (0.2, 0.1, 0.05, 0.025)  # three halvings


def _net(mode, dt=None, readout="li", recurrent=False, backend="auto"):
    spec = LI(tau_mem=10.0, tau_syn=5.0) if readout == "li" else NEURON
    net = (
        EventProp()
        .network(
            "4-8-3", NEURON, readout=spec, recurrent=recurrent, mode=mode, dt=dt, backend=backend
        )
        .double()
    )
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in net.named_parameters():
            lateral = "recurrent" in name
            w = torch.randn(p.shape, generator=gen, dtype=F64) + (0.0 if lateral else 1.0)
            p.copy_(w * (0.3 if lateral else 2.0) / math.sqrt(p.shape[1]))
    return net


def _grads(net, times):
    out = net(Events(times, 40.0))
    gen = torch.Generator().manual_seed(3)
    loss = 0.0
    for s in out.spikes:
        c = torch.randn(s.shape, generator=gen, dtype=F64)
        loss = loss + torch.where(torch.isfinite(s), s * c, torch.zeros_like(s)).sum()
    if out.readout is not None:
        loss = loss + 3 * out.readout.mean().sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    counts = [int(torch.isfinite(s).sum()) for s in out.spikes]
    return torch.cat([g.flatten() for g in grads]), counts


@pytest.mark.parametrize("readout", ["li", "spikes"])
def test_grid_error_falls_with_dt(readout):
    times = torch.rand(2, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    times = times.sort(-1).values
    exact, counts = _grads(_net("exact", readout=readout), times)
    assert sum(counts) > 20
    errors = []
    for dt in DTS:
        grid, grid_counts = _grads(_net("grid", dt, readout=readout), times)
        assert grid_counts == counts  # same spikes: the error is the grid's alone
        errors.append(float((grid - exact).norm() / exact.norm()))
    x = torch.log(torch.tensor(DTS, dtype=F64))
    y = torch.log(torch.tensor(errors, dtype=F64))
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    assert slope >= 0.7, (errors, slope)
    assert errors[-1] < 1e-3 < errors[0], errors


def test_grid_recurrent_converges_once_steps_separate_coincident_spikes():
    """Recurrent spikes sharing a step are injected at the step's end: an error that vanishes
    once dt is below their separation (documented)."""
    times = torch.rand(2, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    times = times.sort(-1).values
    exact, counts = _grads(_net("exact", recurrent=True), times)
    coarse, _ = _grads(_net("grid", 0.2, recurrent=True), times)
    fine, fine_counts = _grads(_net("grid", 0.01, recurrent=True), times)
    assert fine_counts == counts
    assert float((fine - exact).norm() / exact.norm()) < 0.1 * float(
        (coarse - exact).norm() / exact.norm()
    )


def test_grid_forward_spike_times_close_to_exact():
    times = torch.rand(3, 4, 2, generator=torch.Generator().manual_seed(1), dtype=F64) * 20
    times = times.sort(-1).values
    exact = _net("exact", readout="spikes")(Events(times, 40.0)).spikes
    grid = _net("grid", 0.01, readout="spikes")(Events(times, 40.0)).spikes
    for a, b in zip(exact, grid, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
        finite = torch.isfinite(a)
        assert (a[finite] - b[finite]).abs().max() < 0.01


# --- the compiled grid kernels against the torch grid path --------------------------------


@pytest.fixture(scope="module")
def needs_host():
    if not host.available():
        pytest.skip("no C++ compiler")


EMULATED = kernels.Backend("cuda", functools.partial(host.compile_kernel, emulate=True))
BACKENDS = {"cpu": lambda: cuda.HOST, "emulated-cuda": lambda: EMULATED}
LAYER_CASES = {
    "feedforward": {},
    "feedforward-zero-reset": {"reset": "zero"},
    "recurrent": {"recurrent": True},
    "recurrent-zero-general-taus": {"recurrent": True, "reset": "zero", "taus": (10.0, 3.0)},
    "recurrent-equal-taus": {"recurrent": True, "taus": (5.0, 5.0)},
}
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def _layer_case(dtype, recurrent=False, reset="subtract", taus=(10.0, 5.0), B=3, dt=0.5):
    gen = torch.Generator().manual_seed(0)
    pre = (torch.rand(B, 5, 3, generator=gen, dtype=F64) * 30).sort(-1).values
    pre[0, 1, 2] = math.inf  # padding
    pre[1, 2, 0] = 2 * dt  # on a grid point
    pre[2, 3, 2] = 45.0  # after the duration: never injected
    w = (torch.randn(7, 5, generator=gen, dtype=F64) + 0.8) * 1.2
    r = torch.randn(7, 7, generator=gen, dtype=F64) * 0.5 if recurrent else None
    config = LayerConfig(taus[0], taus[1], 1.0, reset, 0.0, 40.0, 64)
    g = torch.randn(B, 7, 64, generator=gen, dtype=F64).to(dtype)
    leaves = [x.to(dtype).requires_grad_() for x in (pre, w, r) if x is not None]
    return leaves, config, g, dt


def _layer_run(layer, leaves, g):
    """Spike times, currents before each spike and the gradients of ``sum(g * times)``."""
    spikes = layer(*leaves[:2], leaves[2] if len(leaves) == 3 else None)
    ctx = spikes.grad_fn
    currents = ctx.record.currents if hasattr(ctx, "record") else ctx.data[3]
    finite = torch.isfinite(spikes)
    loss = torch.where(finite, spikes * g[..., : spikes.shape[-1]], 0.0).sum()
    return spikes.detach(), currents, torch.autograd.grad(loss, leaves)


def _compare_layer(backend, dtype, **kw):
    leaves, config, g, dt = _layer_case(dtype, **kw)
    want = _layer_run(lambda p, w, r: _GridLayer.apply(p, w, r, config, dt), leaves, g)
    got = _layer_run(lambda p, w, r: grid_layer(p, w, r, config, dt, backend), leaves, g)
    tol = TOL[dtype]
    finite = torch.isfinite(want[0])
    assert int(finite.sum()) > 30 and want[0].shape[-1] > 1
    assert torch.equal(torch.isfinite(got[0]), finite)
    assert (got[0][finite] - want[0][finite]).abs().max() <= tol * config.duration
    assert (got[1][finite] - want[1][finite]).abs().max() <= tol * want[1][finite].abs().max()
    for a, b in zip(got[2], want[2], strict=True):  # d pre, dW (, dR)
        b = torch.where(torch.isfinite(b), b, 0.0)
        a = torch.where(torch.isfinite(a), a, 0.0)
        assert (a - b).abs().max() <= tol * b.abs().max()


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kw", list(LAYER_CASES.values()), ids=list(LAYER_CASES))
def test_grid_kernels_equal_the_torch_grid_path(needs_host, dtype, backend, kw):
    _compare_layer(BACKENDS[backend](), dtype, **kw)


@pytest.mark.parametrize(
    "old,new,recurrent",
    [
        ("bins[b * arrivals + e] <= k", "bins[b * arrivals + e] <= k + 1", False),  # early
        ("fmin(fmax(s, T(0)), dt) + grid_t[k - 1]", "fmin(fmax(s, T(0)), dt) + grid_t[k]", False),
        ("v_after * exp(-lt / tm) + i_star * ep_voltage", "v_after + T(0) * ep_voltage", False),
        ("ep_accumulate(&d_weight_t[mj], d_ai);", "", False),  # the jump's dW dropped
        ("d_arrivals[b * arrivals + e] += weight_t[mj]", "d_arrivals[b * arrivals + e] += T(0) * weight_t[mj]", False),
        ("g_k[n] = g_k[n] + dot_i * rs / ts - dot_v * rdv;", "", True),  # recurrent jump
        ("acc_v[m] += rv * row[m];", "", True),  # recurrent V injection
        ("ep_accumulate(&d_row[m], a_i[m] * rs + a_v[m] * rv);", "", True),  # dR
        ("b < batch; b += groups) {\n            const long long rows = b * neurons, logs = rows * cap;\n            T* a_v",
         "b + 1 < batch; b += groups) {\n            const long long rows = b * neurons, logs = rows * cap;\n            T* a_v",
         True),  # the driver drops a sample
    ],
    ids=["inject-early", "crossing-offset", "reset", "jump-dw", "fix-term", "recurrent-jump",
         "recurrent-v", "recurrent-dr", "driver"],
)  # fmt: skip
def test_comparison_catches_a_broken_grid_kernel(needs_host, old, new, recurrent):
    with pytest.raises(AssertionError):
        _compare_layer(broken_cpu_backend(old, new), F64, recurrent=recurrent)


def _net_grads(mode, dt, readout, recurrent, backend, dtype=F64):
    net = _net(mode, dt, readout=readout, recurrent=recurrent, backend=backend).to(dtype)
    times = torch.rand(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    out = net(Events(times.sort(-1).values.to(dtype), 40.0))
    gen = torch.Generator().manual_seed(3)
    loss = 0.0
    for s in out.spikes:
        c = torch.randn(s.shape, generator=gen, dtype=F64).to(dtype)
        loss = loss + torch.where(torch.isfinite(s), s * c, torch.zeros_like(s)).sum()
    if out.readout is not None:
        loss = loss + 3 * out.readout.mean().sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    return [s.detach() for s in out.spikes], grads


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
@pytest.mark.parametrize("readout", ["li", "spikes"])
def test_grid_network_on_the_cpu_kernels_equals_torch(needs_host, monkeypatch, readout,
                                                      recurrent, dtype):  # fmt: skip
    """Two spiking layers (a spiking readout) or one and an LI readout: the hidden layer's
    weight gradient comes through the readout's input-time gradients."""
    calls, original = [], grid_kernels.grid_layer
    monkeypatch.setattr(grid_kernels, "grid_layer", lambda *a: calls.append(a[-1]) or original(*a))
    got_s, got_g = _net_grads("grid", 0.25, readout, recurrent, "auto", dtype)
    assert calls and all(b is cuda.HOST for b in calls)
    calls.clear()
    want_s, want_g = _net_grads("grid", 0.25, readout, recurrent, "torch", dtype)
    assert not calls
    assert sum(int(torch.isfinite(s).sum()) for s in want_s) > 20
    tol = TOL[dtype]
    for a, b in zip(got_s, want_s, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
        f = torch.isfinite(b)
        assert (a[f] - b[f]).abs().max() <= tol * 40
    for a, b in zip(got_g, want_g, strict=True):
        assert (a - b).abs().max() <= tol * b.abs().max()


def test_a_grid_network_with_backend_cpu_runs_the_cpu_kernels(needs_host, monkeypatch):
    calls, original = [], grid_kernels.grid_layer
    monkeypatch.setattr(grid_kernels, "grid_layer", lambda *a: calls.append(a[-1]) or original(*a))
    spikes, grads = _net_grads("grid", 0.25, "li", True, "cpu")
    assert len(calls) == 1 and calls[0] is cuda.HOST
    assert int(torch.isfinite(spikes[0]).sum()) > 10 and all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_grid_cpu_kernels_give_identical_results_for_any_thread_count(needs_host, recurrent):
    gen = torch.Generator().manual_seed(5)
    pre = (torch.rand(40, 6, 2, generator=gen, dtype=F64) * 30).sort(-1).values
    w = ((torch.randn(50, 6, generator=gen, dtype=F64) + 0.8) * 1.2).requires_grad_()
    r = torch.randn(50, 50, generator=gen, dtype=F64) * 0.1 if recurrent else None
    r = None if r is None else r.requires_grad_()
    pre.requires_grad_()
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 40.0, 64)
    threads, runs = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            s = grid_layer(pre, w, r, config, 0.5, cuda.HOST)
            c = torch.randn(s.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
            loss = torch.where(torch.isfinite(s), s * c, 0.0).sum()
            grads = torch.autograd.grad(loss, [x for x in (pre, w, r) if x is not None])
            runs.append((s.detach(), *grads))
    finally:
        torch.set_num_threads(threads)
    assert int(torch.isfinite(runs[0][0]).sum()) > 100  # 40 samples: more than the groups
    for run in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(run, runs[0], strict=True))


def test_grid_kernels_grow_their_buffer_and_bound_the_spikes(needs_host):
    pre = torch.arange(0.0, 100.0, 5.0, dtype=F64).expand(1, 1, -1).contiguous()
    w = torch.full((2, 1), 30.0, dtype=F64)
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 100.0, 1000)
    record = grid_kernels.run(cuda.HOST, pre, w, None, config, 0.1)
    assert record.times.shape[-1] > grid_kernels._CAP  # re-run with a larger buffer
    want = _GridLayer.apply(pre, w, None, config, 0.1)
    assert torch.equal(record.times, want)
    small = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 100.0, 3)
    with pytest.raises(SnnkitError, match="max_spikes=3"):
        grid_kernels.run(cuda.HOST, pre, w, None, small, 0.1)


@pytest.mark.parametrize(
    "backend,env,message",
    [
        ("cuda", "1", "backend='cuda': eventprop's tensors are on cpu"),
        ("cpu", "0", r"backend='cpu': eventprop's kernels need a C\+\+ compiler"),
    ],
    ids=["cuda-on-cpu", "cpu-without-compiler"],
)
def test_a_forced_grid_backend_that_cannot_run_is_one_line(monkeypatch, backend, env, message):
    from snnkit_eventprop import function

    monkeypatch.setenv("SNNKIT_HOST_KERNELS", env)
    function._host_works.cache_clear()
    try:
        net = EventProp().network("3-4-2", NEURON, mode="grid", dt=0.5, backend=backend)
        with pytest.raises(SnnkitError, match=message) as raised:
            net(Events(torch.rand(2, 3, 1) * 10, 40.0))
    finally:
        function._host_works.cache_clear()
    assert "\n" not in str(raised.value)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_grid_gpu_kernels_equal_the_torch_grid_path(dtype, recurrent):
    if not kernels.cupy_available():
        pytest.skip("needs CuPy and a CUDA device")
    leaves, config, g, dt = _layer_case(dtype, recurrent=recurrent)
    want = _layer_run(lambda p, w, r: _GridLayer.apply(p, w, r, config, dt), leaves, g)
    cuda_leaves = [x.detach().cuda().requires_grad_() for x in leaves]
    got = _layer_run(
        lambda p, w, r: grid_layer(p, w, r, config, dt, cuda.CUDA), cuda_leaves, g.cuda()
    )
    tol = TOL[dtype]
    finite = torch.isfinite(want[0])
    assert torch.equal(torch.isfinite(got[0]).cpu(), finite)
    assert (got[0].cpu()[finite] - want[0][finite]).abs().max() <= tol * config.duration
    for a, b in zip(got[2], want[2], strict=True):
        a, b = torch.nan_to_num(a.cpu(), posinf=0.0), torch.nan_to_num(b, posinf=0.0)
        assert (a - b).abs().max() <= tol * b.abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["fp32", "fp64"])
def test_the_kernels_arrivals_are_the_sorted_finite_input_spikes(dtype):
    """As simulate.arrivals (ties in input order), without the trailing padding."""
    from snnkit_eventprop.simulate import arrivals

    gen = torch.Generator().manual_seed(0)
    pre = (torch.randint(0, 50, (5, 30, 6), generator=gen) * 0.5 - 3).to(dtype)  # ties, t < 0
    pre[torch.rand(pre.shape, generator=gen) < 0.6] = math.inf
    pre[0, 0, 0], pre[0, 1, 0] = -0.0, 0.0
    pre[4] = math.inf  # a sample without spikes
    config = LayerConfig(10.0, 5.0, 1.0, "subtract", 0.0, 20.0, 10)
    steps, times, bins, sources, order, grid = grid_kernels._arrivals(pre, config, 0.5, True)
    want = arrivals(pre)
    E = times.shape[1]
    assert E == int(torch.isfinite(pre).flatten(1).sum(1).max())
    assert torch.equal(times, want[0][:, :E])
    finite = torch.isfinite(times)
    assert torch.equal(sources[finite].long(), want[1][:, :E][finite])
    assert torch.equal(order[finite], want[2][:, :E][finite])
    want_steps, want_bins, want_grid = schedule(want[0], config, 0.5)
    assert steps == want_steps and torch.equal(grid, want_grid)
    assert torch.equal(bins.long(), want_bins[:, :E])  # padding: past the last step
    assert sources.dtype == bins.dtype == torch.int32
    assert grid_kernels._arrivals(pre, config, 0.5, False)[4] is None
