"""The convolutional case of ``snnkit bench --conv``: a DVS-Gesture-size conv SNN.

The network is the DVS Gesture recipe's (``NEUROMORPHIC_RECIPES["dvsgesture"]``, dropout
left out so every library runs the same deterministic graph): input spikes
``[T, B, 2, 64, 64]`` (T = the recipe's 300 steps, B = 8, Bernoulli(0.05)), six 3x3
convolutions with average pooling, LIF neurons after each (``tau_mem`` 100 ms, dt 5 ms,
threshold 0.25, subtractive reset), a linear output ``[T, B, 11]``; the loss is
``(output * r).sum()`` for a fixed random ``r``, the gradient goes to every weight. All
libraries start from the same weights.

Each snnkit raster method puts its ``method.neuron`` modules after convolutions applied
to every step at once (``TimeDistributed``); the peers use their own neurons the way
their documentation builds conv nets: spikingjelly a multi-step ``LIFNode`` with
``SeqToANNContainer`` synapses, snntorch ``Leaky(init_hidden=True)`` in an
``nn.Sequential`` called once per time step (``x.unbind(0)``). Every network is also timed
with its spiking neurons replaced by ``nn.Identity`` (same structure: folded convolutions
for snnkit and spikingjelly, the per-step loop for snntorch); **neuron cost** = whole
network - that identity network. Times are medians of ``repeats`` forward+backward
iterations after one warm-up; ``saved_mb`` is what the autograd graph keeps for the
backward pass (as in ``snnkit bench``). On a shared machine the process CPU time of an
iteration (``cpu_ms``, all threads) is steadier than the wall time; both are reported.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from snnkit.bench.engine import BASELINE, _iteration, _Runner, _SavedBytes, _Skip
from snnkit.neurons import LIF

PEERS = ("snntorch", "spikingjelly")
STEPS, BATCH, SENSOR, CLASSES = 300, 8, (2, 64, 64), 11
INPUT_RATE = 0.05
NEURON = LIF(tau_mem=100.0, threshold=0.25, dt=5.0)  # the recipe's LIF


def _import(module: str):
    """A peer library, or a skipped measurement saying why it is not here."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise _Skip("not installed") from None
    except Exception as exc:  # a broken install must not stop the benchmark
        raise _Skip(f"failed to import {module}: {type(exc).__name__}: {exc}") from None


def _stack() -> list[tuple[str, Any]]:
    """The recipe's layers without dropout: ("conv", (in, out, k, padding)), ("pool", k)."""
    from snnkit import arch
    from snnkit.data.neuromorphic import NEUROMORPHIC_RECIPES

    out, channels = [], SENSOR[0]
    for layer in arch.parse(NEUROMORPHIC_RECIPES["dvsgesture"]["arch"]):
        if isinstance(layer, arch.Conv):
            out.append(("conv", (channels, layer.channels, layer.kernel, layer.padding)))
            channels = layer.channels
        elif isinstance(layer, arch.Pool):
            out.append(("pool", layer.size))
    return out


def shared_modules(seed: int = 0) -> tuple[list[nn.Module], int]:
    """The synapses (convolutions, pooling, flatten, linear) every library gets a copy of,
    and the number of spiking populations (one after each convolution)."""
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    shape = SENSOR
    for kind, spec in _stack():
        if kind == "conv":
            c_in, c_out, k, p = spec
            conv = nn.Conv2d(c_in, c_out, k, padding=p, bias=False)
            nn.init.normal_(conv.weight, 0.0, 1.0 / math.sqrt(3 * c_in * k * k))  # torch's std
            modules.append(conv)
            shape = (c_out, shape[1] + 2 * p - k + 1, shape[2] + 2 * p - k + 1)
        else:
            modules.append(nn.AvgPool2d(spec))
            shape = (shape[0], shape[1] // spec, shape[2] // spec)
    modules += [nn.Flatten(), nn.Linear(math.prod(shape), CLASSES, bias=False)]
    return modules, sum(isinstance(m, nn.Conv2d) for m in modules)


def _with_neurons(modules: list[nn.Module], neuron: Callable[[], nn.Module]) -> list[nn.Module]:
    out = []
    for module in copy.deepcopy(modules):
        out.append(module)
        if isinstance(module, nn.Conv2d):
            out.append(neuron())
    return out


def _inputs(steps, batch, device, dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, batch, *SENSOR, generator=gen) < INPUT_RATE).to(device, dtype)
    r = torch.randn(steps, batch, CLASSES, generator=gen).to(device, dtype)
    return x, r


# --------------------------------------------------------------------------- networks


def _folded(modules: list[nn.Module], x: torch.Tensor, wrap) -> _Runner:
    """Stateless modules applied to all steps at once (``wrap`` makes them time-folded)."""
    net = nn.Sequential(*(m if _stateful(m) else wrap(m) for m in modules))
    net = net.to(device=x.device, dtype=x.dtype)

    def forward() -> torch.Tensor:
        for m in net.modules():
            for reset in ("reset_state", "reset"):
                if m is not net and _stateful(m) and hasattr(m, reset):
                    getattr(m, reset)()
        return net(x)

    return _Runner(forward, [p for p in net.parameters() if p.requires_grad])


def _stateful(module: nn.Module) -> bool:
    return not isinstance(module, (nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Linear, nn.Identity))


def _snnkit(name: str, modules, x, spiking: bool) -> _Runner:
    from snnkit.nn import TimeDistributed
    from snnkit.registry import get_registry

    method = get_registry().gradient(name)
    reason = method.supports(NEURON)
    if reason is not None:
        raise _Skip(f"does not support {NEURON.describe()}: {reason}")
    layers = _with_neurons(modules, lambda: method.neuron(NEURON) if spiking else nn.Identity())
    return _folded(layers, x, TimeDistributed)


def _spikingjelly(modules, x, spiking: bool) -> _Runner:
    _import("spikingjelly.activation_based")  # skipped when not installed
    from spikingjelly.activation_based import layer, neuron

    alpha = math.exp(-NEURON.dt / NEURON.tau_mem)

    def lif() -> nn.Module:
        # decay_input=False, v_reset=None: H = alpha V + X, subtractive (soft) reset
        return neuron.LIFNode(tau=1.0 / (1.0 - alpha), decay_input=False, v_reset=None,
                              v_threshold=NEURON.threshold, step_mode="m")  # fmt: skip

    layers = _with_neurons(modules, lif if spiking else nn.Identity)
    return _folded(layers, x, layer.SeqToANNContainer)


def _snntorch(modules, x, spiking: bool) -> _Runner:
    snn = _import("snntorch")
    from snntorch import utils

    if spiking and x.dtype != torch.float32:
        raise _Skip("snntorch.Leaky(init_hidden=True) keeps its state in float32")

    alpha = math.exp(-NEURON.dt / NEURON.tau_mem)

    def lif() -> nn.Module:
        return snn.Leaky(beta=alpha, threshold=NEURON.threshold, init_hidden=True,
                         reset_mechanism="subtract")  # fmt: skip

    net = nn.Sequential(*_with_neurons(modules, lif if spiking else nn.Identity))
    net = net.to(device=x.device, dtype=x.dtype)

    def forward() -> torch.Tensor:
        if spiking:
            utils.reset(net)
        return torch.stack([net(step) for step in x.unbind(0)])

    return _Runner(forward, [p for p in net.parameters() if p.requires_grad])


def _runner(name: str, modules, x, spiking: bool) -> _Runner:
    if name == "spikingjelly":
        return _spikingjelly(modules, x, spiking)
    if name == "snntorch":
        return _snntorch(modules, x, spiking)
    return _snnkit(name, modules, x, spiking)


# --------------------------------------------------------------------------- measuring


@dataclass
class ConvResult:
    """One network: ``variant`` "spiking" or "identity" (neurons replaced by nn.Identity)."""

    method: str
    variant: str
    steps: int = STEPS
    batch: int = BATCH
    device: str = "cpu"
    dtype: str = "float32"
    forward_ms: float | None = None
    backward_ms: float | None = None
    total_ms: float | None = None
    saved_mb: float | None = None
    neuron_ms: float | None = None  # total - the identity network's total (spiking rows)
    cpu_ms: float | None = None  # process CPU time of forward + backward (all threads)
    neuron_cpu_ms: float | None = None  # cpu_ms - the identity network's
    ratio_vs_bptt: float | None = None
    neuron_ratio_vs_bptt: float | None = None
    repeats: int = 0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def _measure(name, spiking, steps, batch, device, dtype, repeats, seed) -> ConvResult:
    result = ConvResult(name, "spiking" if spiking else "identity", steps, batch, str(device),
                        str(dtype).removeprefix("torch."))  # fmt: skip
    modules, _ = shared_modules(seed)
    x, r = _inputs(steps, batch, device, dtype, seed)
    try:
        runner = _runner(name, modules, x, spiking)
    except _Skip as exc:
        result.skipped = str(exc)
        return result
    forward, backward, cpu = [], [], []
    saved = _SavedBytes()
    with saved.hooks():
        _iteration(runner, r, device)  # warm-up, and the saved bytes of one iteration
    for _ in range(repeats):
        start = time.process_time()
        f, b, _ = _iteration(runner, r, device)
        cpu.append(time.process_time() - start)
        forward.append(f)
        backward.append(b)
    result.cpu_ms = 1e3 * statistics.median(cpu)
    result.forward_ms = 1e3 * statistics.median(forward)
    result.backward_ms = 1e3 * statistics.median(backward)
    result.total_ms = 1e3 * statistics.median(f + b for f, b in zip(forward, backward, strict=True))
    result.saved_mb = saved.total / 2**20
    result.repeats = repeats
    return result


def run_conv(
    methods: list[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    repeats: int = 3,
    steps: int | None = None,
    batch: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[ConvResult]:
    """Whole-network and identity-network times of each method (BPTT and the peers
    always included), neuron cost and ratios against BPTT, all from this one run."""
    device = torch.device(device)
    steps, batch = steps or STEPS, batch or BATCH
    names = list(dict.fromkeys([BASELINE, *methods, *PEERS]))
    results = []
    for name in names:
        for spiking in (True, False):
            if progress is not None:
                progress(f"{name} ({'spiking' if spiking else 'identity'} neurons)")
            results.append(_measure(name, spiking, steps, batch, device, dtype, repeats, seed))
    _derive(results)
    return results


def _derive(results: list[ConvResult]) -> None:
    by = {(r.method, r.variant): r for r in results if r.total_ms is not None}
    for r in results:
        identity = by.get((r.method, "identity"))
        if r.variant == "spiking" and r.total_ms is not None and identity is not None:
            r.neuron_ms = r.total_ms - identity.total_ms
            r.neuron_cpu_ms = r.cpu_ms - identity.cpu_ms
    base = by.get((BASELINE, "spiking"))
    for r in results:
        if base is None or r.variant != "spiking" or r.total_ms is None:
            continue
        r.ratio_vs_bptt = base.total_ms / r.total_ms
        if r.neuron_ms and base.neuron_ms and r.neuron_ms > 0:
            r.neuron_ratio_vs_bptt = base.neuron_ms / r.neuron_ms


def fastest_peer(results: list[ConvResult]) -> ConvResult | None:
    """The peer whose neurons cost least (None without a measured peer)."""
    peers = [r for r in results if r.method in PEERS and r.neuron_ms is not None]
    return min(peers, key=lambda r: r.neuron_ms) if peers else None


def conv_table(results: list[ConvResult]):
    from rich.table import Table

    peer = fastest_peer(results)
    title = (
        f"conv SNN, DVS Gesture recipe: T={results[0].steps}, B={results[0].batch}, 2x64x64, "
        "6 conv + LIF "
        f"({results[0].device}, {results[0].dtype})"
    )
    table = Table(title=title)
    for column in ("method", "neurons", "fwd ms", "bwd ms", "total ms", "saved MB",
                   "neuron ms", "cpu ms", "neuron cpu ms", "x bptt", "neurons x bptt",
                   "neurons vs fastest peer"):  # fmt: skip
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in results:
        if r.skipped:
            table.add_row(r.method, r.variant, *["-"] * 9, f"skipped: {r.skipped}")
            continue
        vs_peer = (
            f"{peer.neuron_ms / r.neuron_ms:.2f}x"
            if peer and r.neuron_ms and r.neuron_ms > 0 and r.method not in PEERS
            else ""
        )
        table.add_row(
            r.method, r.variant, f"{r.forward_ms:.0f}", f"{r.backward_ms:.0f}",
            f"{r.total_ms:.0f}", f"{r.saved_mb:.0f}",
            "" if r.neuron_ms is None else f"{r.neuron_ms:.0f}", f"{r.cpu_ms:.0f}",
            "" if r.neuron_cpu_ms is None else f"{r.neuron_cpu_ms:.0f}",
            "" if r.ratio_vs_bptt is None else f"{r.ratio_vs_bptt:.2f}",
            "" if r.neuron_ratio_vs_bptt is None else f"{r.neuron_ratio_vs_bptt:.2f}", vs_peer,
        )  # fmt: skip
    return table


def to_json(results: list[ConvResult], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    peer = fastest_peer(results)
    return {
        "schema": "snnkit-bench-conv/1",
        "meta": meta or {},
        "network": {
            "steps": results[0].steps,
            "batch": results[0].batch,
            "sensor": list(SENSOR),
            "layers": _stack(),
            "neuron": NEURON.describe(),
            "input_rate": INPUT_RATE,
        },  # fmt: skip
        "fastest_peer": None if peer is None else peer.method,
        "results": [asdict(r) for r in results],
    }


__all__ = ["ConvResult", "conv_table", "fastest_peer", "run_conv", "shared_modules", "to_json"]
