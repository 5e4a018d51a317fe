"""Where kernels run: snnkit.kernels.select and the uniform ``backend`` layer option."""

from __future__ import annotations

import pytest
import torch

from snnkit import host, kernels
from snnkit.errors import SnnkitError
from snnkit.kernels import Backend, check_backend, select
from snnkit.neurons import LIF
from snnkit.registry import get_registry

CUDA = Backend("cuda", lambda *a: None)
CPU = Backend("cpu", lambda *a: None, "_host")
X = torch.zeros(2, 1, 3)


def test_auto_takes_the_kernels_of_the_tensors_device_when_they_run_and_fit():
    assert select(X, "auto", "m", cuda=CUDA, cpu=CPU) is CPU
    assert select(X, "auto", "m", cuda=CUDA) is None  # no CPU kernels: torch
    assert select(X, "auto", "m", cpu=CPU, cpu_works=lambda: False) is None
    assert select(X, "auto", "m", cpu=CPU, unfit="recurrent layers") is None
    assert select(X, "torch", "m", cuda=CUDA, cpu=CPU) is None


@pytest.mark.parametrize(
    ("choice", "kwargs", "message"),
    [
        ("cpu", {"cuda": CUDA}, "backend='cpu': m has cuda kernels; use auto or torch"),
        ("cuda", {"cuda": CUDA, "cpu": CPU}, "m's tensors are on cpu"),
        ("cpu", {"cpu": CPU, "cpu_works": lambda: False}, "need a C\\+\\+ compiler"),
        ("cpu", {"cpu": CPU, "unfit": "recurrent layers"}, "do not run recurrent layers"),
        ("gpu", {"cuda": CUDA, "cpu": CPU}, "backend='gpu'"),
    ],
)
def test_a_forced_backend_that_cannot_run_says_why(choice, kwargs, message):
    with pytest.raises(SnnkitError, match=message):
        select(X, choice, "m", **kwargs)


def test_check_backend():
    assert check_backend("cpu", ("cpu", "torch"), "m") == "cpu"
    assert check_backend("auto", (), "m") == "auto"
    with pytest.raises(SnnkitError, match="backend='gpu': m runs on auto, cpu, torch"):
        check_backend("gpu", ("cpu", "torch"), "m")


def _run(method: str, backend: str, **options):
    torch.manual_seed(0)
    neuron = (
        get_registry()
        .gradient(method)
        .neuron(LIF(tau_mem=8.0, tau_syn=4.0), 6, backend=backend, train_threshold=True, **options)
    )
    neuron = neuron.double()
    current = (2 * torch.rand(30, 3, 6, dtype=torch.float64)).requires_grad_()
    spikes = neuron(current)
    grads = torch.autograd.grad(
        (spikes * torch.linspace(-1, 1, 6)).sum(), [current, *neuron.parameters()]
    )
    return spikes.detach(), grads


@pytest.mark.skipif(not host.available(), reason="no C++ compiler")
def test_exodus_on_the_cpu_drivers_equals_its_torch_scan():
    ref_spikes, ref_grads = _run("exodus", "torch")
    spikes, grads = _run("exodus", "cpu")
    assert torch.equal(spikes, ref_spikes) and spikes.sum() > 0
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("method", "backend", "message"),
    [
        ("exodus", "gpu", "backend='gpu': ExodusNeuron runs on auto, cuda, cpu, torch"),
        ("bptt", "cpu", "backend='cpu': BPTTNeuron runs on auto, torch"),
        ("rouser", "cpu", "RouserNeuron runs on auto, cuda, torch"),
        ("slayer", "cpu", "runs on auto, cuda, torch"),
    ],
)
def test_the_layer_option_is_checked_when_the_layer_is_built(method, backend, message):
    with pytest.raises(SnnkitError, match=message):
        get_registry().gradient(method).neuron(LIF(), 4, backend=backend)


def test_a_forced_backend_that_cannot_run_fails_at_the_call():
    exodus = get_registry().gradient("exodus")
    with pytest.raises(SnnkitError, match="exodus's tensors are on cpu"):
        exodus.neuron(LIF(), 4, backend="cuda")(torch.rand(5, 2, 4))
    recurrent = exodus.neuron(LIF(), 4, backend="cpu", recurrent=True)
    with pytest.raises(SnnkitError, match="do not run recurrent layers"):
        recurrent(torch.rand(5, 2, 4))


def test_importing_kernels_never_imports_cupy_or_host():
    import subprocess
    import sys

    code = "import sys, snnkit.kernels; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert kernels.launch_grid(0) == (1,) and kernels.launch_grid(129) == (2,)


def test_columns_unfit_names_what_the_column_kernels_do_not_run():
    one = torch.ones(3)
    assert kernels.columns_unfit(X, (one, None)) is None
    assert kernels.columns_unfit(X, (one,), w_rec=torch.ones(3, 3)) == "recurrent layers"
    assert kernels.columns_unfit(X[:0], (one,)) == "a current of shape (0, 1, 3)"
    assert "more than one dimension" in kernels.columns_unfit(X, (torch.ones(1, 3),))


def test_partial_sums_are_bounded_by_the_batch_and_32_mb():
    """A CPU driver's per-group slices: at most its groups and the batch, and no more than
    32 MB of them (SHD's 7000 x 256 float32 weight: 4 slices); CUDA sums with atomics."""
    from snnkit.kernels import cpu_backend, cuda_backend

    cpu = cpu_backend(str, groups=32)
    assert cpu.partial_sums(64, 10 * 20, torch.float64) == 32
    assert cpu.partial_sums(5, 10 * 20, torch.float64) == 5
    assert cpu.partial_sums(64, 10 * 20, torch.float64, most=16) == 16
    assert cpu.partial_sums(32, 7000 * 256, torch.float32) == 4
    assert cpu.partial_sums(32, 7000 * 256, torch.float64) == 2
    assert cpu.partial_sums(32, 10**8, torch.float32) == 1
    assert cuda_backend().partial_sums(32, 10, torch.float32) == 1
