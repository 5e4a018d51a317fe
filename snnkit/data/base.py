"""Dataset containers: one split as spike events, and the registry entry describing a dataset."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from snnkit.errors import SnnkitError
from snnkit.events import Events

__all__ = ["DatasetSpec", "SpikeDataset"]


@dataclass(eq=False)
class SpikeDataset:
    """One split of a classification task as spike events."""

    events: Events
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str
    split: str
    _cache: tuple[tuple[float, int | None], torch.Tensor] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.events, Events):
            raise SnnkitError(
                f"SpikeDataset.events must be snnkit.events.Events, got "
                f"{type(self.events).__name__}"
            )
        labels = self.labels
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1:
            raise SnnkitError("SpikeDataset.labels must be a 1-D tensor of class indices [S]")
        if labels.dtype != torch.long:
            raise SnnkitError(
                f"SpikeDataset.labels must be torch.long class indices, got {labels.dtype}; "
                "convert with .long()"
            )
        if labels.shape[0] != self.events.batch_size:
            raise SnnkitError(
                f"SpikeDataset has {self.events.batch_size} samples but {labels.shape[0]} "
                "labels; give exactly one label per sample"
            )
        self.classes = tuple(self.classes)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(self.classes)):
            raise SnnkitError(
                f"SpikeDataset labels must lie in [0, {len(self.classes)}) for "
                f"{len(self.classes)} classes; check the labels or the class names"
            )

    def __len__(self) -> int:
        return self.events.batch_size

    @property
    def num_inputs(self) -> int:
        """Number of input neurons ``N``."""
        return self.events.num_neurons

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Features of one step (flat here: ``(N,)``)."""
        return (self.num_inputs,)

    def raster(self, dt: float, steps: int | None = None) -> torch.Tensor:
        """All samples as a float32 ``[T, S, N]`` raster (last result cached; don't mutate)."""
        key = (float(dt), steps)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.events.to_raster(dt, steps, dtype=torch.float32))
        return self._cache[1]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: what it is and how to load a split."""

    name: str
    summary: str
    classes: tuple[str, ...]
    num_inputs: int
    duration: float
    load: Callable[..., SpikeDataset]
    splits: tuple[str, ...] = ("train", "validation", "test")
    source: str = "built-in"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # datasets read from files: status(data_dir) -> short text ("present, cached (1)"),
    # download(data_dir) fetches the files explicitly; None for generated datasets
    status: Callable[..., str] | None = None
    download: Callable[..., None] | None = None

    def available(self) -> bool:
        """Whether it can be loaded here: built-ins always; otherwise the ``source`` package."""
        if self.source == "built-in":
            return True
        return importlib.util.find_spec(self.source) is not None


# -- option validation shared by the loaders -------------------------------------------------


def check_split(dataset: str, split: object, splits: tuple[str, ...]) -> str:
    """Return ``split`` if it is one of ``splits`` else raise :class:`SnnkitError`."""
    if split not in splits:
        raise SnnkitError(
            f"dataset '{dataset}' has no split {split!r}; choose one of {', '.join(splits)}"
        )
    return str(split)


def check_int(dataset: str, name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum`` else raise :class:`SnnkitError`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SnnkitError(
            f"{dataset}: option {name} must be an integer >= {minimum}, got {value!r}"
        )
    return value


def check_float(dataset: str, name: str, value: object) -> float:
    """Return ``value`` as float if it is a finite real number else raise :class:`SnnkitError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value):
        raise SnnkitError(f"{dataset}: option {name} must be a finite number, got {value!r}")
    return float(value)


def check_seed(dataset: str, value: object) -> int:
    """Return ``value`` if it is a valid numpy seed (int in ``[0, 2**32)``)."""
    check_int(dataset, "seed", value, 0)
    if value >= 2**32:  # type: ignore[operator]
        raise SnnkitError(f"{dataset}: option seed must be below 2**32, got {value!r}")
    return int(value)  # type: ignore[arg-type]
