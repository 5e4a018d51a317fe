"""The benchmark engine: forward+backward time and saved memory of one (method, config)
measurement, BPTT always measured in the same run (see :mod:`snnkit.bench`)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from snnkit.errors import SnnkitError
from snnkit.neurons import LIF

PARTS: tuple[str, ...] = ("neuron", "linear+lif")
BASELINE = "bptt"
TAU_MEM = 10.0  # the benchmark neuron: LIF(tau_mem=10), threshold 1, subtractive reset


@dataclass(frozen=True)
class BenchConfig:
    """Sequence length ``steps`` (T), ``batch`` (B), ``neurons`` (N) and the ``part`` timed.

    ``trainable``: the neurons' ``tau_mem`` and threshold are trained parameters (their
    gradients are computed too); by default they are fixed constants.
    """

    steps: int
    batch: int
    neurons: int
    part: str = "neuron"
    trainable: bool = False

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise SnnkitError(
                f"unknown benchmark part {self.part!r}; use one of {', '.join(PARTS)}"
            )
        for name in ("steps", "batch", "neurons"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SnnkitError(f"benchmark {name} must be an integer >= 1, got {value!r}")

    @property
    def size(self) -> int:
        """T * B * N, the number of neuron updates (the scale used to extrapolate times)."""
        return self.steps * self.batch * self.neurons

    def describe(self) -> str:
        train = ", trained tau/theta" if self.trainable else ""
        return f"{self.part} T={self.steps} B={self.batch} N={self.neurons}{train}"


DEFAULT_SIZES: tuple[tuple[int, int, int], ...] = ((100, 32, 256), (500, 16, 512), (500, 16, 4096))
DEFAULT_CONFIGS: list[BenchConfig] = [
    BenchConfig(steps, batch, neurons, part)
    for steps, batch, neurons in DEFAULT_SIZES
    for part in PARTS
]


@dataclass
class BenchResult:
    """One (method, config) measurement; times are None when it was skipped (see ``skipped``).

    ``ratio_vs_bptt`` is BPTT's total time divided by this method's (a speed-up, > 1 is
    faster); ``saved_ratio_vs_bptt`` is BPTT's saved bytes divided by this method's
    (> 1 keeps less for the backward pass). Both are None without a BPTT measurement of
    the same config in the same run.
    """

    method: str
    steps: int
    batch: int
    neurons: int
    part: str
    device: str
    dtype: str
    trainable: bool = False
    forward_ms: float | None = None
    backward_ms: float | None = None
    total_ms: float | None = None
    saved_mb: float | None = None
    peak_mb: float | None = None
    ratio_vs_bptt: float | None = None
    saved_ratio_vs_bptt: float | None = None
    spike_rate: float | None = None
    repeats: int = 0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def config(self) -> BenchConfig:
        return BenchConfig(self.steps, self.batch, self.neurons, self.part, self.trainable)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.total_ms is not None


class _Skip(Exception):
    """Raised by a runner factory: this (method, config) cannot be measured here."""


# --------------------------------------------------------------------------- measuring


class _SavedBytes:
    """Sum of the distinct storages the autograd graph packs for backward, in bytes."""

    def __init__(self) -> None:
        self.storages: dict[tuple[str, int], int] = {}

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        nbytes = storage.nbytes() or tensor.numel() * tensor.element_size()
        self.storages[key] = max(self.storages.get(key, 0), nbytes)
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)


@dataclass
class _Runner:
    """A prepared measurement: ``forward()`` returns spikes ``[T, B, N]``; ``leaves`` get grads."""

    forward: Callable[[], torch.Tensor]
    leaves: list[torch.Tensor]
    notes: list[str] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clear_grads(leaves: list[torch.Tensor]) -> None:
    for leaf in leaves:
        leaf.grad = None


def _iteration(
    runner: _Runner, readout: torch.Tensor, device: torch.device
) -> tuple[float, float, torch.Tensor]:
    """One timed forward + backward; returns (forward s, backward s, spikes)."""
    _clear_grads(runner.leaves)
    _sync(device)
    t0 = time.perf_counter()
    spikes = runner.forward()
    _sync(device)
    t1 = time.perf_counter()
    loss = (spikes * readout).sum()
    _sync(device)
    t2 = time.perf_counter()
    loss.backward()
    _sync(device)
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2, spikes.detach()


# --------------------------------------------------------------------------- inputs


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


# The input current of the "neuron" part: N(0.15, 0.6^2) makes ~15 % of LIF(tau=10)
# neurons spike per step. The spikes of "linear+lif": Bernoulli(0.2) into N(0, 1/N)
# weights (the layers' default initialisation).
CURRENT_MEAN, CURRENT_STD, INPUT_RATE = 0.15, 0.6, 0.2


def _current(cfg: BenchConfig, device, dtype, seed: int) -> torch.Tensor:
    gen = _generator(seed)
    shape = (cfg.steps, cfg.batch, cfg.neurons)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * CURRENT_STD + CURRENT_MEAN
    return x.to(device=device, dtype=dtype)


def _input_spikes(cfg: BenchConfig, device, dtype, seed: int) -> torch.Tensor:
    gen = _generator(seed)
    shape = (cfg.steps, cfg.batch, cfg.neurons)
    return (torch.rand(shape, generator=gen) < INPUT_RATE).to(device=device, dtype=dtype)


def _readout(cfg: BenchConfig, device, dtype, seed: int) -> torch.Tensor:
    gen = _generator(seed + 1)
    shape = (cfg.steps, cfg.batch, cfg.neurons)
    return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)


def _linear_weight(cfg: BenchConfig, device, dtype, seed: int) -> torch.Tensor:
    gen = _generator(seed + 2)
    w = torch.randn(cfg.neurons, cfg.neurons, generator=gen) / math.sqrt(cfg.neurons)
    return w.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------- snnkit methods


def method_options(name: str) -> tuple[str, dict[str, str]]:
    """``"exodus:save=input"`` -> ``("exodus", {"save": "input"})``: a method benchmarked
    with layer options (comma-separated ``KEY=VALUE`` after a colon)."""
    base, _, text = name.partition(":")
    options = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SnnkitError(f"benchmark method {name!r}: options are KEY=VALUE after a colon")
        options[key] = value
    return base, options


def _snnkit_runner(name: str, cfg: BenchConfig, device, dtype, seed: int) -> _Runner:
    from snnkit.registry import get_registry

    name, options = method_options(name)
    method = get_registry().gradient(name)
    neuron = LIF(tau_mem=TAU_MEM)
    reason = method.supports(neuron)
    if reason is not None:
        raise _Skip(f"does not support {neuron.describe()}: {reason}")
    notes = []
    if device.type not in method.devices:
        notes.append(f"{name} lists devices {', '.join(method.devices)}, not {device.type}")
    torch.manual_seed(seed)
    train = {"train_tau": True, "train_threshold": True} if cfg.trainable else {}
    if cfg.part == "neuron":
        try:
            neurons = method.neuron(neuron, cfg.neurons, **train, **options)
        except TypeError:  # e.g. exodus:save=input
            raise _Skip(
                f"{', '.join(options)}: layer options; the neuron part times dynamics alone"
            ) from None
        except SnnkitError as exc:  # e.g. a peer with trained tau and threshold
            raise _Skip(str(exc)) from None
        neurons = neurons.to(device=device, dtype=dtype)
        notes += getattr(neurons, "notes", [])
        current = _current(cfg, device, dtype, seed).requires_grad_()

        def forward() -> torch.Tensor:
            neurons.reset_state()
            return neurons(current)

        return _Runner(forward, [current, *neurons.params.parameters()], notes)

    try:
        layer = method.layer(neuron, cfg.neurons, cfg.neurons, **train, **options)
    except SnnkitError as exc:
        if not _is_peer(name):
            raise
        raise _Skip(str(exc)) from None
    layer = layer.to(device=device, dtype=dtype)
    notes += getattr(getattr(layer, "neurons", None), "notes", [])

    with torch.no_grad():
        layer.weight.copy_(_linear_weight(cfg, device, dtype, seed))
    x = _input_spikes(cfg, device, dtype, seed)

    def forward() -> torch.Tensor:
        layer.reset_state()
        return layer(x)

    return _Runner(forward, [p for p in layer.parameters() if p.requires_grad], notes)


# --------------------------------------------------------------------------- peer libraries

# Methods of the bundled peers plugin (snnkit[peers]): registered only where their library
# is installed, so a missing one is a skipped measurement here, not an unknown method.
PEERS: tuple[str, ...] = ("snntorch", "norse", "spikingjelly", "sinabs")


# --------------------------------------------------------------------------- running


def _is_peer(name: str) -> bool:
    return method_options(name)[0] in PEERS


def _runner(name: str, cfg: BenchConfig, device, dtype, seed: int) -> _Runner:
    if _is_peer(name):
        from snnkit.registry import get_registry

        if method_options(name)[0] not in get_registry().names("gradient"):
            raise _Skip("not installed (pip install 'snnkit[peers]')")
    return _snnkit_runner(name, cfg, device, dtype, seed)


EXTRAPOLATE_MAX = 16  # extrapolate a time from a config at most this many times smaller


def _estimate_s(history: dict[tuple, list[tuple[int, float]]], name: str, cfg: BenchConfig):
    """(seconds per iteration, source size) scaled linearly in T*B*N, or (None, None).

    Only from the largest smaller config of the same method and part, and only if it is
    at most ``EXTRAPOLATE_MAX`` times smaller: tiny configs are dominated by per-step
    overheads and would extrapolate to nonsense.
    """
    smaller = [
        (size, s)
        for size, s in history.get(_history_key(name, cfg), [])
        if cfg.size / EXTRAPOLATE_MAX <= size <= cfg.size
    ]
    if not smaller:
        return None, None
    size, seconds = max(smaller)
    return seconds * cfg.size / size, size


def _history_key(name: str, cfg: BenchConfig) -> tuple[str, str, bool]:
    return name, cfg.part, cfg.trainable


def _measure(
    name: str,
    cfg: BenchConfig,
    *,
    device: torch.device,
    dtype: torch.dtype,
    repeats: int,
    warmup: int,
    timeout_s: float | None,
    seed: int,
    history: dict[tuple, list[tuple[int, float]]],
) -> BenchResult:
    result = BenchResult(
        name,
        cfg.steps,
        cfg.batch,
        cfg.neurons,
        cfg.part,
        str(device),
        str(dtype).split(".")[-1],
        cfg.trainable,
    )
    untimed = max(warmup, 1)  # the first untimed iteration also measures the saved bytes
    if timeout_s is not None:
        per_iter, from_size = _estimate_s(history, name, cfg)
        if per_iter is not None and per_iter * (untimed + repeats) > timeout_s:
            result.skipped = (
                f"estimated {per_iter * (untimed + repeats):.0f} s "
                f"({per_iter:.1f} s per iteration, scaled from T*B*N={from_size}) "
                f"> timeout {timeout_s:g} s"
            )
            return result
    try:
        runner = _runner(name, cfg, device, dtype, seed)
    except _Skip as skip:
        result.skipped = str(skip)
        return result
    except Exception as exc:
        if not _is_peer(name):
            raise
        result.skipped = f"adapter failed: {type(exc).__name__}: {exc}"
        return result
    result.notes.extend(runner.notes)
    try:
        return _timed(
            runner, result, cfg, device, dtype, repeats, untimed, timeout_s, seed, history
        )
    except Exception as exc:
        if not _is_peer(name):
            raise
        result.skipped = f"failed while running: {type(exc).__name__}: {exc}"
        return result


def _timed(
    runner: _Runner,
    result: BenchResult,
    cfg: BenchConfig,
    device: torch.device,
    dtype: torch.dtype,
    repeats: int,
    untimed: int,
    timeout_s: float | None,
    seed: int,
    history: dict[tuple, list[tuple[int, float]]],
) -> BenchResult:
    """The measurement proper: one untimed pass counting saved bytes, warm-up, timed repeats."""
    name = result.method
    readout = _readout(cfg, device, dtype, seed)
    started = time.perf_counter()

    counter = _SavedBytes()
    _clear_grads(runner.leaves)
    with counter.hooks():  # the method's forward only, not the loss
        spikes = runner.forward()
    loss = (spikes * readout).sum()
    loss.backward()
    _sync(device)
    first_s = time.perf_counter() - started
    result.saved_mb = counter.total / 2**20
    result.spike_rate = float(spikes.detach().float().mean())
    del spikes, loss
    if timeout_s is not None and first_s * (untimed - 1 + repeats) > timeout_s - first_s:
        result.skipped = (
            f"one untimed iteration took {first_s:.1f} s; {untimed - 1 + repeats} more "
            f"would exceed timeout {timeout_s:g} s"
        )
        history.setdefault(_history_key(name, cfg), []).append((cfg.size, first_s))
        return result
    for _ in range(untimed - 1):
        _iteration(runner, readout, device)

    forward, backward, total, peaks = [], [], [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        f, b, _spikes = _iteration(runner, readout, device)
        if device.type == "cuda":
            peaks.append(torch.cuda.max_memory_allocated(device) / 2**20)
        forward.append(f)
        backward.append(b)
        total.append(f + b)
    result.forward_ms = statistics.median(forward) * 1e3
    result.backward_ms = statistics.median(backward) * 1e3
    result.total_ms = statistics.median(total) * 1e3
    result.peak_mb = max(peaks) if peaks else None
    result.repeats = repeats
    history.setdefault(_history_key(name, cfg), []).append((cfg.size, result.total_ms / 1e3))
    return result


def _add_ratios(results: list[BenchResult]) -> None:
    baseline = {(r.config, r.device, r.dtype): r for r in results if r.method == BASELINE and r.ok}
    for r in results:
        base = baseline.get((r.config, r.device, r.dtype))
        if base is None or not r.ok:
            continue
        r.ratio_vs_bptt = base.total_ms / r.total_ms if r.total_ms > 0 else None
        if r.saved_mb and base.saved_mb is not None:
            r.saved_ratio_vs_bptt = base.saved_mb / r.saved_mb


def run_bench(
    methods: list[str],
    configs: list[BenchConfig] | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    repeats: int = 5,
    warmup: int = 1,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> list[BenchResult]:
    """Benchmark ``methods`` (BPTT is added as the baseline) on ``configs``.

    Configs run from the smallest to the largest (``T*B*N``) so that, with ``timeout_s``,
    a (method, config) whose time extrapolated from a smaller config of the same method
    and part exceeds ``timeout_s`` seconds (warm-up and repeats included) is skipped
    with the estimate as its reason. Without a smaller measurement, one untimed
    iteration is run first and the measurement skipped if the rest would not fit.
    ``progress`` receives a line before each measurement.
    """
    if repeats < 1:
        raise SnnkitError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise SnnkitError(f"warmup must be >= 0, got {warmup}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SnnkitError("--device cuda: no CUDA device is available to torch")
    configs = list(DEFAULT_CONFIGS if configs is None else configs)
    names = [BASELINE] + [m for m in dict.fromkeys(methods) if m != BASELINE]
    order = sorted(range(len(configs)), key=lambda k: (configs[k].size, k))
    history: dict[tuple, list[tuple[int, float]]] = {}
    measured: dict[tuple[int, str], BenchResult] = {}
    for k in order:
        cfg = configs[k]
        for name in names:
            if progress is not None:
                progress(f"{name}: {cfg.describe()} on {device}")
            measured[k, name] = _measure(
                name,
                cfg,
                device=device,
                dtype=dtype,
                repeats=repeats,
                warmup=warmup,
                timeout_s=timeout_s,
                seed=seed,
                history=history,
            )
    results = [measured[k, name] for k in range(len(configs)) for name in names]
    _add_ratios(results)
    return results
