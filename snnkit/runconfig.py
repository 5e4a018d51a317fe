"""The one declaration of a training run's settings (:class:`RunConfig`) and their
resolution against a dataset's recipe and a method's defaults (:func:`resolve_run`).

``snnkit run``'s options are the fields of :class:`RunConfig` (tests/test_cli.py checks the
two against each other); :class:`ResolvedRun` carries the settings resolved once, with the
method, neuron and dataset they name, from the command line or a leaderboard grid to the
:class:`~snnkit.train.Trainer`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from snnkit.errors import SnnkitError, check
from snnkit.registry import Registry, get_registry

DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_INT = 2**31 - 1  # seeds and batch sizes: the batch-order generator's seed stays in int64
SCHEDULES = ("none", "cosine", "step:GAMMA:EVERY")


def step_schedule(text: str) -> tuple[float, int] | None:
    """``"step:0.95:5"`` -> ``(0.95, 5)``: the learning rate times GAMMA every EVERY epochs
    (W&P's Yin-Yang schedule); None for any other schedule name."""
    kind, _, rest = text.partition(":")
    if kind != "step":
        return None
    gamma, _, every = rest.partition(":")
    try:
        gamma_f, every_i = float(gamma), int(every)
    except ValueError:
        every_i, gamma_f = 0, 0.0
    if not (0 < gamma_f <= 1 and every_i >= 1):
        raise SnnkitError(
            f"--schedule {text!r}: use step:GAMMA:EVERY with 0 < GAMMA <= 1 and EVERY >= 1 "
            "epochs, e.g. step:0.95:5"
        )
    return gamma_f, every_i


def check_device(device: str) -> None:
    """Refuse a device string other than ``cpu``, ``cuda`` or ``cuda:N`` of a present GPU."""
    check(
        re.fullmatch(r"cpu|cuda(:\d+)?", device) is not None,
        f"--device must be cpu or cuda[:N], got {device!r}",
    )
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SnnkitError(
                f"--device {device}: no CUDA device is available here; use --device cpu"
            )
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        check(index < count, f"--device {device}: there are {count} CUDA devices (cuda:0 ..)")


READOUTS = ("li", "spiking")  # leaky-integrator voltage readout, or a spiking output layer
# layer options that switch something on or off (`--layer-opt train_threshold=true`): a
# string such as "maybe" would be truthy, so anything but a boolean is refused
BOOLEAN_LAYER_OPTIONS = ("train_tau", "train_threshold", "recurrent", "bias")


@dataclass
class RunConfig:
    """Everything that defines a training run. ``None`` fields take the dataset's defaults."""

    dataset: str = "yinyang"
    grad: str = "bptt"
    neuron: str = "lif"
    hidden: str | None = None
    arch: str | None = (
        None  # layers as a compact spec or a TOML file (snnkit.arch); not with hidden
    )
    recurrent: bool = False
    surrogate: str | None = None
    loss: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_threshold: float | None = None  # trained thresholds' Adam learning rate (None: lr)
    clip_grad: float | None = None  # clip the gradient's global norm to this (None: never)
    schedule: str | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: str | None = None  # float32 unless the dataset's recipe says otherwise
    dt: float | None = None
    # Hz: input weights scaled at the start so the first hidden layer fires at this rate on
    # training data (snnkit.weight_init.scale_to_rate); 0/None: off
    init_rate: float | None = None
    neuron_options: dict[str, Any] = field(default_factory=dict)
    readout_tau: float | None = None
    readout: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    layer_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None  # where file-based datasets live (--data-dir / SNNKIT_DATA)

    def resolved(self, defaults: dict[str, Any], representation: str = "raster") -> RunConfig:
        """A copy with unset fields filled from ``defaults`` (dataset recommendations).

        ``defaults["events"]``, if present, overrides the rest for event methods (their
        recipes differ: continuous time, spiking readouts, no raster layer options).
        """
        defaults = dict(defaults)
        event_recipe = defaults.pop("events", {})
        if representation == "events":
            defaults.update(event_recipe)
        fallback = {
            "hidden": "100",
            "surrogate": "exponential",
            "loss": "ce_max",
            "epochs": 10,
            "batch_size": 32,
            "lr": 1e-3,
            "schedule": "none",
            "dt": 1.0,
            "init_rate": 0.0,
            "readout_tau": None,
            "readout": "li",
            "dtype": "float32",
        }
        if self.hidden is not None and self.arch is not None:
            raise SnnkitError("--arch and --hidden both describe the network; give one of them")
        out = dataclasses.replace(self)
        for name, value in {**fallback, **defaults}.items():
            if name == "neuron_options":  # keyed by neuron kind
                out.neuron_options = {**value.get(self.neuron, {}), **self.neuron_options}
            elif name.endswith("_options"):
                merged = {**value, **getattr(out, name)}
                setattr(out, name, merged)
            elif getattr(out, name, None) is None:
                setattr(out, name, value)
        if self.hidden is not None:  # the user's MLP over the recipe's architecture
            out.arch = None
        if out.arch is not None:
            from snnkit.arch import canonical

            out.arch, out.hidden = canonical(out.arch), None
        return out

    def validate(self) -> None:
        check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        check(
            1 <= self.batch_size <= MAX_INT,
            f"--batch-size must be between 1 and {MAX_INT}, got {self.batch_size}",
        )
        check(0 <= self.seed <= MAX_INT, f"--seed must be between 0 and {MAX_INT}, got {self.seed}")
        check(
            self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"
        )
        check(
            self.lr_threshold is None
            or (self.lr_threshold > 0 and math.isfinite(self.lr_threshold)),
            f"--lr-threshold must be a positive number, got {self.lr_threshold}",
        )
        check(
            self.clip_grad is None or (self.clip_grad > 0 and math.isfinite(self.clip_grad)),
            f"--clip-grad must be a positive number, got {self.clip_grad}",
        )
        check(
            self.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"
        )
        check(
            self.init_rate >= 0 and math.isfinite(self.init_rate),
            f"--init-rate must be a rate in Hz >= 0 (0: off), got {self.init_rate}",
        )
        check(
            self.readout in READOUTS,
            f"--readout must be one of {', '.join(READOUTS)}, got {self.readout!r}",
        )
        check(
            self.schedule in SCHEDULES[:2] or step_schedule(self.schedule) is not None,
            f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
        )
        for key in BOOLEAN_LAYER_OPTIONS:
            value = self.layer_options.get(key, False)
            check(
                isinstance(value, bool),
                f"--layer-opt {key} must be true or false, got {value!r}",
            )
        check_device(self.device)


def with_method_defaults(dataset_defaults, method, dataset: str | None = None) -> dict[str, Any]:
    """Dataset defaults overlaid with the method's ``run_defaults`` (RunConfig fields it
    recommends, e.g. a surrogate or layer options), then with its settings for this
    dataset, ``run_defaults["datasets"][dataset]``, merged in key by key (``*_options`` and
    the ``events`` part included); the user's choices still win."""
    general = dict(method.run_defaults)
    own = general.pop("datasets", {}).get(dataset, {})
    out = dict(dataset_defaults)
    for name, value in general.items():
        if name.endswith("_options"):
            value = {**out.get(name, {}), **value}
        out[name] = value
    return _merged(out, own)


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in top.items():
        if name == "events" or name.endswith("_options"):
            value = _merged(out.get(name, {}), value)
        out[name] = value
    return out


@dataclass(frozen=True)
class ResolvedRun:
    """A run's settings resolved once (:func:`resolve_run`): ``config`` with the dataset's
    and the method's defaults filled in and validated, and the plugin objects it names."""

    config: RunConfig
    method: Any  # snnkit.methods.GradientMethod
    neuron: Any  # snnkit.neurons.Neuron, with the config's dt and options
    dataset: Any  # the registry's dataset spec
    registry: Registry


def resolve_run(config: RunConfig | ResolvedRun, registry: Registry | None = None) -> ResolvedRun:
    """``config`` resolved: the settings a run with it trains by (what the results store
    records), with the method, neuron and dataset they name; a :class:`ResolvedRun` is
    returned as it is. Every mistake is found here, before any data is loaded (a grid of
    runs is checked before any of them trains)."""
    if isinstance(config, ResolvedRun):
        return config
    reg = registry or get_registry()
    method = reg.gradient(config.grad)
    dataset = reg.dataset(config.dataset)
    defaults = with_method_defaults(dataset.defaults, method, config.dataset)
    resolved = config.resolved(defaults, method.representation)
    resolved.validate()
    neuron = reg.neuron(resolved.neuron, dt=resolved.dt, **resolved.neuron_options)
    method.check(neuron)  # whether the method takes this neuron and its options
    return ResolvedRun(resolved, method, neuron, dataset, reg)


def resolve(config: RunConfig | ResolvedRun, registry: Registry | None = None) -> RunConfig:
    """The resolved settings of ``config`` (:func:`resolve_run`'s ``config``)."""
    return resolve_run(config, registry).config
