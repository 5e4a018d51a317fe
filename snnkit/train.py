"""The training loop: Adam, per-epoch evaluation, metrics, checkpoints and resumption.

A run's settings are declared and resolved in :mod:`snnkit.runconfig` (re-exported here);
what differs between raster and event methods (input preparation, outputs, spike
statistics, ``--arch`` networks) is their :class:`~snnkit.input_kinds.InputKind`.

Determinism: weights are drawn from ``torch.manual_seed(seed)``; each epoch's batch
order comes from a generator seeded by ``(seed, epoch)``, so an interrupted run resumed
from its checkpoint follows exactly the same trajectory as an uninterrupted one (CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnkit import distributed
from snnkit.distributed import SINGLE, World
from snnkit.errors import SilentLayerWarning, SnnkitError
from snnkit.input_kinds import input_kind
from snnkit.interrupts import Interrupted, deferred, stop_on_signals
from snnkit.neurons import LI
from snnkit.nn import NeuronParameters
from snnkit.registry import Registry, get_registry
from snnkit.runconfig import (  # noqa: F401  re-exported: snnkit.train's public names
    BOOLEAN_LAYER_OPTIONS,
    DTYPES,
    MAX_INT,
    READOUTS,
    SCHEDULES,
    ResolvedRun,
    RunConfig,
    check_device,
    resolve,
    resolve_run,
    step_schedule,
    with_method_defaults,
)

_EVAL_BYTES = 1 << 28  # inputs of one evaluation forward, at most (Trainer._eval_chunk)


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    validation_loss: float
    validation_accuracy: float
    test_accuracy: float
    seconds: float  # wall clock of the training pass
    spike_rate: list[float]
    dead_fraction: list[float]
    lr: float
    # per hidden layer: mean, std, min, max of its thresholds (trained or fixed)
    threshold: list[dict[str, float]] = field(default_factory=list)
    # optimiser steps skipped because a gradient was not finite (e.g. a spike whose dV/dt
    # rounds to zero in float32: the exact spike-time gradient is infinite there)
    skipped_steps: int = 0
    # process CPU time of the training pass (all threads): on a shared machine, unlike the
    # wall clock, it hardly depends on what else runs (None in runs recorded before it was)
    cpu_seconds: float | None = None


@dataclass
class Step:
    """One batch of an epoch after its optimiser step: what :attr:`Trainer.step_hooks` see."""

    epoch: int
    batch: int  # its position in the epoch, from 0
    index: torch.Tensor  # the global batch's sample indices in the training split
    loss: torch.Tensor  # this rank's mean loss
    hidden: list[torch.Tensor]  # each hidden layer's spikes (raster or spike times)
    stepped: bool  # False: no gradient reached the loss, or it was not finite (skipped)


@dataclass
class RunResult:
    """What a finished run reports (and what ``--json`` writes)."""

    config: RunConfig
    epochs: list[EpochMetrics]
    peak_memory_mb: float
    run_id: int | None = None
    checkpoint: str | None = None
    db: str | None = None
    threads: int = field(default_factory=torch.get_num_threads)

    @property
    def final(self) -> EpochMetrics:
        return self.epochs[-1]

    @property
    def best_validation(self) -> EpochMetrics:
        """The epoch of highest validation accuracy (the first of equals): model selection
        on the validation split, never on the test split."""
        return max(self.epochs, key=lambda e: e.validation_accuracy)

    def summary(self) -> dict[str, Any]:
        final, best = self.final, self.best_validation
        return {
            "test_accuracy": final.test_accuracy,
            "best_validation_epoch": best.epoch,
            "test_accuracy_at_best_validation": best.test_accuracy,
            "train_accuracy": final.train_accuracy,
            "validation_accuracy": final.validation_accuracy,
            "epochs": len(self.epochs),
            "seconds_per_epoch": sum(e.seconds for e in self.epochs) / len(self.epochs),
            "cpu_seconds_per_epoch": (
                None
                if any(e.cpu_seconds is None for e in self.epochs)
                else sum(e.cpu_seconds for e in self.epochs) / len(self.epochs)
            ),
            "peak_memory_mb": self.peak_memory_mb,
            "method": self.config.grad,
            "neuron": self.config.neuron,
            "dataset": self.config.dataset,
            "seed": self.config.seed,
            "spike_rate": final.spike_rate,
            "dead_fraction": final.dead_fraction,
            "threshold": final.threshold,
            "skipped_steps": sum(e.skipped_steps for e in self.epochs),
            "run_id": self.run_id,
            "threads": self.threads,
            "config": asdict(self.config),
            "history": [asdict(e) for e in self.epochs],
        }


def versions(registry: Registry) -> dict[str, str]:
    """Versions of the software that produced a result (python, torch, each plugin)."""
    from snnkit import __version__

    out = {"snnkit": __version__, "torch": torch.__version__, "python": platform.python_version()}
    for plugin in registry.plugins:
        if plugin.error is None and plugin.distribution != "snnkit":
            out[f"plugin:{plugin.name}"] = f"{plugin.distribution} {plugin.version}"
    return out


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """Builds model, data and optimiser from a :class:`RunConfig` (or a :class:`ResolvedRun`,
    not resolved again) and trains it; under DDP (``world`` of several processes) each rank
    trains on its share of every global batch (:mod:`snnkit.distributed`).

    ``step_hooks`` are called after every batch's optimiser step (or skipped step) with
    the trainer and that :class:`Step`: the place for a rule that adjusts the network
    between steps."""

    def __init__(
        self,
        config: RunConfig | ResolvedRun,
        registry: Registry | None = None,
        world: World = SINGLE,
    ) -> None:
        run = resolve_run(config, registry)
        self.registry = reg = run.registry
        self.world = world
        spec = run.dataset
        self.method = run.method
        self.config = config = run.config
        self.neuron = run.neuron
        self.loss = reg.loss(config.loss)
        self.surrogate = reg.surrogate(config.surrogate)
        self.device = distributed.device_of(config.device, world)
        self.dtype = DTYPES[config.dtype]

        data_options = dict(config.dataset_options)
        if config.data_dir is not None and spec.source != "built-in":
            data_options.setdefault("data_dir", config.data_dir)
        with _unknown_options("--data-opt", f"dataset '{config.dataset}'"):
            self.data = {s: spec.load(s, **data_options) for s in spec.splits}
        self.kind = input_kind(self.method, config.dt, self.data["train"])
        torch.manual_seed(config.seed)
        with _unknown_options("--layer-opt", f"method '{config.grad}'"):
            self.model = self._network(self.data["train"]).to(self.device, self.dtype)
        produces = self.kind.loss_input(self.model.output_kind)
        if self.loss.input != produces:
            raise SnnkitError(
                f"loss '{config.loss}' reads {self.loss.input} but this network outputs "
                f"{produces}; choose a loss for {produces} (see `snnkit plugins`) or change --readout"
            )
        self.forward = distributed.wrap(self.model, world)  # DDP averages the gradients
        # every split kept on the device: raster methods get it binned once, event
        # methods get the spike times themselves
        self.inputs = {
            split: self.kind.prepare(ds, self.device, self.dtype) for split, ds in self.data.items()
        }
        self.initial_rate = self._scale_input_weights() if config.init_rate else None
        self.optimizer = torch.optim.Adam(
            parameter_groups(self.model, config.lr, config.lr_threshold), lr=config.lr
        )
        step = step_schedule(config.schedule)
        if config.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=config.epochs
            )
        elif step is not None:
            self.scheduler = torch.optim.lr_scheduler.StepLR(
                self.optimizer, step_size=step[1], gamma=step[0]
            )
        else:
            self.scheduler = None
        self.history: list[EpochMetrics] = []
        self.step_hooks: list[Callable[[Trainer, Step], None]] = []

    def _network(self, train) -> torch.nn.Module:
        """The model: ``--arch`` layers, else an MLP of ``--hidden`` sizes."""
        from snnkit import arch

        config = self.config
        if config.readout == "spiking":
            readout = self.neuron  # the output layer spikes like the hidden ones
        elif config.readout_tau:
            readout = LI(tau_mem=config.readout_tau, dt=config.dt)
        else:
            readout = None  # the method's default LI readout
        common = dict(readout=readout, recurrent=config.recurrent, surrogate=self.surrogate)
        if config.arch is None:
            shape = f"{train.num_inputs}-{config.hidden}-{train.num_classes}"
            return self.method.network(shape, self.neuron, **common, **config.layer_options)
        layers = arch.parse(config.arch)
        return self.kind.network(self.method, layers, self.neuron, train, config, common)

    @torch.no_grad()
    def _scale_input_weights(self) -> float | None:
        """Scale the input weights so the first hidden layer fires at ``init_rate`` Hz on a
        fixed sample of the training data (:func:`snnkit.weight_init.scale_to_rate`); returns the
        rate reached, None when the network has no hidden layer."""
        from snnkit.weight_init import input_weight, scale_to_rate

        weight = input_weight(self.model)
        if weight is None:
            return None
        n = len(self.data["train"])
        index = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))
        x, _ = self.batch("train", index[: min(n, 32)])
        original = weight.detach().clone()

        class NoHiddenLayer(Exception):
            pass

        def first_layer_rate(factor: float) -> float:  # Hz
            weight.copy_(original * factor)
            self.model.reset_state()
            _, hidden = self.outputs(self.model(x))
            self.model.reset_state()
            if not hidden:
                raise NoHiddenLayer
            return self.kind.spike_stats(hidden)[0][0] * 1000.0 / self.config.dt

        # every measurement inside scale_to_rate: a factor whose neurons fire past their
        # spike bound (e.g. the unscaled weights on dense input) counts as too high
        try:
            factor, rate = scale_to_rate(first_layer_rate, self.config.init_rate)
        except NoHiddenLayer:
            factor, rate = 1.0, None
        weight.copy_(original * factor)
        return rate

    def batch(self, split: str, index: torch.Tensor):
        """The samples ``index`` of ``split``: inputs as the method takes them, and labels."""
        x = self.kind.select(self.inputs[split], index)
        return x, self.data[split].labels[index].to(self.device)

    def outputs(self, out) -> tuple[Any, list[torch.Tensor]]:
        """What the loss reads, and each hidden layer's spikes (raster or spike times)."""
        return self.kind.outputs(self.model, out)

    def backward(self, index: torch.Tensor) -> tuple[torch.Tensor, Any, torch.Tensor, Any, int]:
        """Forward and backward of this rank's share of the global batch ``index``: the
        parameters' ``.grad`` then hold the gradient of the global batch's mean loss (under
        DDP averaged over the ranks during the backward), or None where no spike reached
        the loss (on any rank). Returns this rank's mean loss, the loss input, its labels,
        the hidden spikes and how many samples this rank counts (0: none of its own)."""
        mine, weight = distributed.shard(index, self.world)
        x, y = self.batch("train", mine)
        self.model.reset_state()
        output, hidden = self.outputs(self.forward(x))
        loss = self.loss(output, y)
        if not torch.isfinite(loss):
            raise SnnkitError(f"the loss became {loss.item()}; lower --lr or check the inputs")
        self.optimizer.zero_grad(set_to_none=True)
        if self.world.active:  # every rank joins each all-reduce, spikes or not
            distributed.differentiable(loss * weight, self.model).backward()
            reached = distributed.all_sum([float(loss.requires_grad)], self.world, self.device)
            if not reached[0]:  # as in one process: no gradient, no step
                self.optimizer.zero_grad(set_to_none=True)
        elif loss.requires_grad:  # else no spike reached the loss: the gradient is zero
            loss.backward()
        return loss.detach(), output, y, hidden, len(mine) if weight > 0 else 0

    # one epoch -----------------------------------------------------------------------------
    def train_epoch(
        self, epoch: int, on_batch: Callable[[int, int], None] | None = None
    ) -> EpochMetrics:
        cfg = self.config
        n = len(self.data["train"])
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        )
        batches = order.split(cfg.batch_size)
        self.model.train()
        total_loss, correct, stepped, skipped = 0.0, 0, False, 0
        rates, dead = None, None
        start, cpu_start = time.perf_counter(), time.process_time()
        for k, index in enumerate(batches):
            try:
                loss, output, y, hidden, count = self.backward(index)
            except SnnkitError as exc:
                raise SnnkitError(f"epoch {epoch}, batch {k}: {exc}") from None
            outcome = self._optimizer_step()
            stepped |= outcome == "stepped"
            skipped += outcome == "skipped"
            with torch.no_grad():
                if count:
                    total_loss += loss.item() * count
                    correct += (self.loss.predict(output) == y).sum().item()
                r, d = self.kind.spike_stats(hidden)
                rates = r if rates is None else [a + b for a, b in zip(rates, r, strict=True)]
                dead = d if dead is None else [a + b for a, b in zip(dead, d, strict=True)]
            for hook in self.step_hooks:
                hook(self, Step(epoch, k, index, loss, hidden, outcome == "stepped"))
            if on_batch is not None:
                on_batch(k + 1, len(batches))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        if self.world.active:  # sums over the ranks; spike statistics averaged over them
            layers = len(rates or [])
            sums = distributed.all_sum(
                [total_loss, correct, *(rates or []), *(dead or [])], self.world, self.device
            )
            total_loss, correct = sums[0], round(sums[1])
            size = self.world.size
            rates = [r / size for r in sums[2 : 2 + layers]] if rates is not None else None
            dead = [d / size for d in sums[2 + layers :]] if dead is not None else None
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            with warnings.catch_warnings():  # the schedule follows epochs, stepped or not
                if not stepped:
                    warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                self.scheduler.step()
        val_loss, val_acc = self.evaluate("validation")
        _, test_acc = self.evaluate("test")
        nb = len(batches)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=total_loss / n,
            train_accuracy=correct / n,
            validation_loss=val_loss,
            validation_accuracy=val_acc,
            test_accuracy=test_acc,
            seconds=seconds,
            spike_rate=[r / nb for r in rates or []],
            dead_fraction=[d / nb for d in dead or []],
            lr=lr,
            threshold=threshold_stats(self.model),
            skipped_steps=skipped,
            cpu_seconds=cpu_seconds,
        )
        self.history.append(metrics)
        if len(self.history) == 1:
            _warn_silent(metrics, cfg)
        return metrics

    def _optimizer_step(self) -> str | None:
        """Apply the batch's gradient: ``"stepped"``; ``"skipped"`` when it is not finite
        (one step lost, counted and reported; never NaN weights); None without one. The
        same decision on every rank: DDP's gradients are identical."""
        if not any(p.grad is not None for p in self.model.parameters()):
            return None
        if not _finite_gradients(self.model):
            return "skipped"
        if self.config.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.optimizer.step()
        return "stepped"

    def _eval_chunk(self, split: str) -> int:
        """Samples per evaluation forward: up to 256 (fewer steps on small data) while their
        inputs fit in 256 MB, never fewer than the training batch. Inputs built per batch
        (recorded datasets' spike times) get the training batch: their size is unknown
        until built (an SHD raster is 28 MB a recording, 256 of them 7 GB)."""
        inputs, n = self.inputs[split], max(len(self.data[split]), 1)
        shape = getattr(inputs, "shape", None) or getattr(
            getattr(inputs, "times", None), "shape", None
        )
        if shape is None:
            return self.config.batch_size
        per_sample = 4 * math.prod(shape) // n
        return max(self.config.batch_size, min(256, _EVAL_BYTES // max(per_sample, 1)))

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """Mean loss and accuracy on ``split``."""
        self.model.eval()
        n = len(self.data[split])
        total, correct = 0.0, 0
        chunks = torch.arange(n).split(self._eval_chunk(split))
        for index in chunks[self.world.rank :: self.world.size]:  # under DDP: a share each
            x, y = self.batch(split, index)
            self.model.reset_state()
            out, _ = self.outputs(self.model(x))
            total += self.loss(out, y).item() * len(index)
            correct += (self.loss.predict(out) == y).sum().item()
        self.model.reset_state()
        total, correct = distributed.all_sum([total, correct], self.world, self.device)
        return total / n, round(correct) / n

    # checkpoints -----------------------------------------------------------------------
    def state_dict(self, run_id: int | None) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "history": [asdict(e) for e in self.history],
            "run_id": run_id,
        }

    def save(self, path: Path, run_id: int | None) -> None:
        """Write the checkpoint atomically (a crash mid-write never leaves a torn file)."""
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(run_id), tmp)
        os.replace(tmp, path)

    def load(self, path: Path) -> int | None:
        """Restore from ``path``; returns the results-store run id it belongs to. Under
        DDP rank 0 reads the file and broadcasts its contents."""
        state = None
        if self.world.main:
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise SnnkitError(
                    f"cannot read checkpoint {path}: {exc}; delete it to start afresh"
                ) from None
        state = distributed.broadcast(state, self.world)
        saved = state["config"]
        mine = asdict(self.config)
        # more epochs may be asked for, except where the schedule depends on the total;
        # the data may have moved
        free = ("data_dir", "epochs") if self.config.schedule != "cosine" else ("data_dir",)
        diff = sorted(k for k in mine if k not in free and saved.get(k) != mine[k])
        if diff:
            raise SnnkitError(
                f"checkpoint {path} was made with different settings ({', '.join(diff)}); "
                "use another --out, or leave those options out (--resume restores them)"
            )
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as exc:  # e.g. parameter groups of an older snnkit
            raise SnnkitError(
                f"checkpoint {path} does not fit this optimiser ({exc}); use another --out"
            ) from None
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochMetrics(**e) for e in state["history"]]
        return state["run_id"]


@contextlib.contextmanager
def _unknown_options(flag: str, owner: str):
    """Turn an unexpected-keyword TypeError from a plugin factory into a one-line error."""
    try:
        yield
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        bad = str(exc).rsplit("argument", 1)[-1].strip()
        raise SnnkitError(
            f"{flag}: {owner} has no option {bad}; check the spelling or its docs"
        ) from None


def _finite_gradients(model: torch.nn.Module) -> bool:
    """Whether every gradient of ``model`` is finite (one reduction over all of them)."""
    grads = [p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.cat(grads)).all())


def is_threshold(name: str) -> bool:
    """Whether a parameter is a threshold (by name, e.g. ``layers.0.params.threshold``)."""
    return name.rsplit(".", 1)[-1].endswith("threshold")


def parameter_groups(
    model: torch.nn.Module, lr: float, lr_threshold: float | None
) -> list[dict[str, Any]]:
    """Adam parameter groups: everything at ``lr``, then (if any) the thresholds at
    ``lr_threshold`` (default ``lr``) in a second group, so their rate can differ."""
    named = list(model.named_parameters())
    thresholds = [p for n, p in named if is_threshold(n)]
    groups = [{"params": [p for n, p in named if not is_threshold(n)], "lr": lr}]
    if thresholds:
        rate = lr if lr_threshold is None else lr_threshold
        groups.append({"params": thresholds, "lr": rate, "name": "threshold"})
    return groups


@torch.no_grad()
def threshold_stats(model: torch.nn.Module) -> list[dict[str, float]]:
    """Mean, std, min and max of each hidden spiking layer's thresholds."""
    stats = []
    for layer in getattr(model, "layers", []):
        params = getattr(layer, "params", None)
        if not getattr(layer, "spiking", False) or not isinstance(params, NeuronParameters):
            continue
        if "threshold" not in params.neuron.quantities():
            continue
        theta = params.value("threshold").detach().to(torch.float64)
        stats.append(
            {
                "mean": theta.mean().item(),
                "std": theta.std(unbiased=False).item(),
                "min": theta.min().item(),
                "max": theta.max().item(),
            }
        )
    return stats


def _warn_silent(metrics: EpochMetrics, cfg: RunConfig) -> None:
    """One :class:`SilentLayerWarning` per hidden layer that fired nothing all epoch."""
    for k, dead in enumerate(metrics.dead_fraction):
        if dead >= 1.0:
            hint = (
                f"raise --init-rate (now {cfg.init_rate:g} Hz)"
                if cfg.init_rate
                else "pass --init-rate 10 (input weights scaled to the data)"
            )
            warnings.warn(
                SilentLayerWarning(
                    f"hidden layer {k + 1} fired no spike in epoch {metrics.epoch}, so every "
                    f"gradient through it is zero; {hint} or larger input weights"
                ),
                stacklevel=3,
            )


def default_out_dir(config: RunConfig, root: str | os.PathLike = "runs") -> Path:
    """Where a run's checkpoints go unless ``--out`` says otherwise:
    ``root/<task>-<method>-<neuron>-<setting>-seed<N>``, where ``<setting>`` is the digest of
    every resolved option that changes what is trained (:func:`snnkit.leaderboard.setting_key`),
    so runs that differ in any of them (a surrogate, a learning rate) never share a folder."""
    from snnkit.leaderboard import setting_key

    key = setting_key(asdict(config))
    return Path(root) / f"{config.dataset}-{config.grad}-{config.neuron}-{key}-seed{config.seed}"


CHECKPOINT = "checkpoint.pt"


def saved_config(checkpoint: str | os.PathLike) -> RunConfig:
    """The (resolved) settings a checkpoint was trained with: what ``--resume`` restores."""
    path = Path(checkpoint)
    if not path.is_file():
        raise SnnkitError(
            f"no checkpoint {path} to resume; drop --resume to start a new run, or run "
            "`snnkit run --resume` alone to continue the most recent interrupted one"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = state["config"]
    except Exception as exc:
        raise SnnkitError(
            f"cannot read checkpoint {path}: {exc}; delete it to start afresh"
        ) from None
    known = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in saved.items() if k in known})


def trained(checkpoint: str | os.PathLike) -> Trainer:
    """A trainer with the network a checkpoint holds, rebuilt from its settings on the CPU
    (with its dataset: the input and output sizes, and the data to evaluate)."""
    config = saved_config(checkpoint)
    config.device = "cpu"
    trainer = Trainer(config)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    trainer.model.load_state_dict(state["model"])
    trainer.model.eval()
    return trainer


def trained_model(checkpoint: str | os.PathLike) -> torch.nn.Module:
    """The network a checkpoint holds (see :func:`trained`)."""
    return trained(checkpoint).model


@contextlib.contextmanager
def _claim(folder: Path):
    """Hold ``folder`` (created if needed) for this process: a second run writing the same
    checkpoint is refused. The lock is the kernel's (``flock``): it goes with the process,
    however that ends, so a killed run never leaves a stale lock behind."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".lock", "a+")  # noqa: SIM115  held open while training
    except OSError as exc:
        raise SnnkitError(
            f"--out {folder}: cannot create it ({exc.strerror or exc}); choose another path"
        ) from None
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                raise SnnkitError(
                    f"--out {folder} is in use by another run ({owner}); wait for it to "
                    "finish or choose another --out"
                ) from None
        from snnkit.results import this_host

        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {this_host()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def run(
    config: RunConfig | ResolvedRun,
    *,
    db: str | os.PathLike | None = "snnkit-results.db",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    console=None,
    registry: Registry | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> RunResult:
    """Train, checkpointing every epoch and recording the run in the results store.

    Output paths are checked before any work. With ``resume`` the run continues from
    ``out/checkpoint.pt`` (same settings required; a missing checkpoint is an error) and
    keeps its results-store record. A run that stops early is recorded as failed or, on
    SIGINT, SIGTERM or SIGHUP, as interrupted (the exception, :class:`Interrupted`, says
    where to resume); never as completed. Two runs never share an ``out`` folder.

    Under torchrun (``WORLD_SIZE`` > 1) this process joins the job's process group
    (:mod:`snnkit.distributed`); only rank 0 checks and writes ``out``, ``db`` and the
    progress display, and a peer's failure ends this rank with :class:`JobFailed`.
    ``config`` is resolved once (:func:`resolve_run`), here unless it already is.
    """
    config = resolve_run(config, registry)
    world = distributed.init(config.config.device)
    try:
        return _run(config, world, db, out, resume, progress, console, on_epoch)
    except RuntimeError as exc:
        failed = distributed.lost_peer(exc, world)
        if failed is None:
            raise
        raise failed from None
    finally:
        if world.active:
            distributed.destroy()


def check_outputs(
    config: RunConfig | ResolvedRun, db, out, resume: bool, registry: Registry | None = None
) -> Path:
    """The run's checkpoint folder, after checking that it and ``db`` can be written and
    that a new run (not ``resume``) would not overwrite an earlier checkpoint."""
    from snnkit.paths import writable_dir, writable_file

    out_dir = Path(out) if out is not None else default_out_dir(resolve(config, registry))
    writable_dir(out_dir, "--out")
    if db is not None and os.fspath(db) != ":memory:":
        writable_file(db, "--db")
    checkpoint = out_dir / CHECKPOINT
    if checkpoint.exists() and not resume:
        raise SnnkitError(
            f"{checkpoint} exists from an earlier run; pass --resume to continue it, or --out DIR for a new one"
        )
    return out_dir


def _run(resolved: ResolvedRun, world, db, out, resume, progress, console, on_epoch) -> RunResult:
    from snnkit.results import ResultsStore

    out_dir = Path(out) if out is not None else default_out_dir(resolved.config)
    if not world.main:  # rank 0 alone writes: the store, checkpoints, the display
        db, progress = None, False
    else:
        check_outputs(resolved, db, out_dir, resume=True)
    trainer = Trainer(resolved, world=world)
    config = trainer.config
    checkpoint = out_dir / CHECKPOINT
    claim = _claim(out_dir) if world.main else contextlib.nullcontext()
    with claim, stop_on_signals():
        if world.main and checkpoint.exists() and not resume:
            raise SnnkitError(
                f"{checkpoint} exists from an earlier run; pass --resume to continue it, or --out DIR for a new one"
            )
        if resume and world.main:
            saved_config(checkpoint)  # a missing checkpoint: one line saying what to do
        run_id = trainer.load(checkpoint) if resume else None
        store = ResultsStore(db) if db is not None else None
        saves = checkpoint if world.main else None
        try:
            if store is not None:
                run_id = _record(store, trainer, run_id, checkpoint)
            with store.beating(run_id) if store is not None else contextlib.nullcontext():
                _train(trainer, saves, run_id, store, progress, console, on_epoch)
        except Interrupted as exc:
            exc.run_id, exc.checkpoint, exc.epochs_done = (
                run_id,
                str(checkpoint),
                len(trainer.history),
            )
            exc.db = None if db is None else os.fspath(db)
            raise
        finally:
            if store is not None:
                store.close()
    return RunResult(
        config,
        trainer.history,
        peak_memory_mb(trainer.device),
        run_id,
        str(checkpoint),
        None if db is None else os.fspath(db),
    )


def _record(store, trainer: Trainer, run_id: int | None, checkpoint: Path) -> int:
    """The run's record: a new one, or the resumed checkpoint's, marked running again."""
    config = trainer.config
    if run_id is None:
        return store.start_run(
            method=config.grad,
            neuron=config.neuron,
            dataset=config.dataset,
            seed=config.seed,
            config=asdict(config),
            versions=versions(trainer.registry),
            device=str(trainer.device),
            checkpoint=checkpoint,
        )
    try:
        record = store.get(run_id)
    except SnnkitError:
        record = None
    identity = (config.dataset, config.grad, config.neuron, config.seed)
    if record is None or (record.dataset, record.method, record.neuron, record.seed) != identity:
        raise SnnkitError(
            f"checkpoint {checkpoint} belongs to run {run_id} of another results database, "
            f"not {store.path}; pass the --db it was recorded in"
        )
    store.resume_run(run_id, checkpoint)
    return run_id


def _train(trainer, checkpoint, run_id, store, progress, console, on_epoch) -> None:
    """The epochs, then the record's final status: completed, interrupted or failed."""
    status = "failed"
    try:
        _loop(trainer, checkpoint, run_id, store, progress, console, on_epoch)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if store is not None:
            with deferred():  # a second signal waits: the record is written whole
                result = RunResult(
                    trainer.config, trainer.history, peak_memory_mb(trainer.device), run_id
                )
                _finish(store, run_id, result, status)


def _finish(store, run_id: int, result: RunResult, status: str) -> None:
    """Close the record ``run_id`` with ``status`` and the metrics of ``result``."""
    done = status == "completed"
    summary = result.summary() if result.epochs else {}
    store.finish_run(
        run_id,
        status=status,
        test_accuracy=summary.get("test_accuracy") if done else None,
        train_accuracy=summary.get("train_accuracy") if done else None,
        seconds_per_epoch=summary.get("seconds_per_epoch"),
        peak_memory_mb=result.peak_memory_mb,
        summary={k: v for k, v in summary.items() if k not in ("config", "history")},
    )


def record_completed(store, result: RunResult, registry: Registry | None = None) -> int:
    """Write a run trained elsewhere (a process pool's or a Ray task's, which return their
    results) into ``store`` as completed, every epoch included; returns its id."""
    config = result.config
    run_id = store.start_run(
        method=config.grad,
        neuron=config.neuron,
        dataset=config.dataset,
        seed=config.seed,
        config=asdict(config),
        versions=versions(registry or get_registry()),
        device=config.device,
        checkpoint=result.checkpoint,
    )
    for m in result.epochs:
        store.log_epoch(run_id, m.epoch, asdict(m))
    result.run_id = run_id
    _finish(store, run_id, result, "completed")
    return run_id


def _loop(trainer, checkpoint, run_id, store, progress, console, on_epoch) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cfg = trainer.config
    first = len(trainer.history) + 1
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # the epochs bar advances by batch fractions, so that its time estimate exists from the
    # first batches on; rich forgets progress older than speed_estimate_period
    with Progress(
        *columns,
        console=console,
        disable=not progress,
        transient=False,
        speed_estimate_period=3600,
    ) as bar:
        epochs = bar.add_task("epochs", total=cfg.epochs, completed=first - 1, info="")
        batches = bar.add_task("batches", total=None, info="")
        for epoch in range(first, cfg.epochs + 1):
            bar.reset(batches, description=f"epoch {epoch}")

            def on_batch(k: int, total: int, epoch: int = epoch) -> None:
                bar.update(batches, completed=k, total=total)
                bar.update(epochs, completed=epoch - 1 + k / total)

            m = trainer.train_epoch(epoch, on_batch)
            with deferred():  # a signal waits until checkpoint and record agree
                if checkpoint is not None:  # None: not this rank's to write
                    trainer.save(checkpoint, run_id)
                if store is not None:
                    store.log_epoch(run_id, epoch, asdict(m))
            info = f"loss {m.train_loss:.3f}  val {m.validation_accuracy:.1%}  test {m.test_accuracy:.1%}"
            if m.dead_fraction:
                info += "  dead " + "/".join(f"{d:.0%}" for d in m.dead_fraction)
            if m.skipped_steps:
                info += f"  skipped {m.skipped_steps} step(s): non-finite gradient"
            if cfg.layer_options.get("train_threshold") and m.threshold:
                info += "  θ " + "/".join(f"{t['mean']:.2f}±{t['std']:.2f}" for t in m.threshold)
            lowest = min((t["min"] for t in m.threshold), default=1.0)
            if lowest <= 0:  # trained thresholds are not constrained (docs/guide.md)
                info += f"  θ min {lowest:.3f} ≤ 0: such neurons fire at every step"
            bar.update(epochs, completed=epoch, info=info)
            if progress:  # one line per epoch stays on screen: the dead-neuron trajectory
                bar.console.print(f"epoch {epoch}  {info}", highlight=False)
            if on_epoch is not None:
                on_epoch(m)
