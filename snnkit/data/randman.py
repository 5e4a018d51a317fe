"""Randman (Zenke & Vogels 2021): random smooth manifolds as a pure spike-timing task.

Each class ``c`` owns a random smooth map ``M_c: [0,1]^d -> [0,1]^units``. Output unit ``j``
is a sum over the ``d`` input coordinates of 1-D random Fourier series::

    g_jk(x) = sum_{i=1..nb_spectral} i**-alpha * a_jki * sin(2*pi*(i * x * b_jki + c_jki))

with ``a, b, c ~ U[0, 1)`` drawn from ``numpy.random.RandomState(seed)`` (class by class).
Normalisation: because ``f_j = sum_k g_jk(x_k)`` is separable, its range over the whole cube
is ``[sum_k min g_jk, sum_k max g_jk]``; each 1-D extreme is taken over a dense grid of
``_GRID`` points, and ``f_j`` is min-max scaled by that range (clipped to [0, 1] to absorb the
tiny grid error). A sample of class ``c`` draws ``x ~ U[0,1]^d`` and emits one spike per unit
at ``t = M_c(x)_j * 0.95 * duration``, so every spike lies in ``[0, 0.95*duration]``.

The manifolds depend only on ``seed``; the samples of each split use their own generator
(``numpy.random.default_rng((seed, split_index))``), so splits share manifolds but differ.
Samples are shuffled within a split with that same generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snnkit.data.base import (
    DatasetSpec,
    SpikeDataset,
    check_float,
    check_int,
    check_seed,
    check_split,
)
from snnkit.errors import SnnkitError
from snnkit.events import Events

__all__ = ["RandmanManifolds", "load", "randman_points", "randman_spec"]

_NAME = "randman"
_GRID = 2049
_SPLIT_INDEX = {"train": 1, "validation": 2, "test": 3}
_SAMPLES_PER_CLASS = {"train": 100, "validation": 20, "test": 20}
SPAN = 0.95  # spikes occupy [0, SPAN * duration]


@dataclass(frozen=True, eq=False)
class RandmanManifolds:
    """The random manifolds of all classes (parameters ``[classes, units, dim, nb_spectral]``)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    alpha: float
    low: np.ndarray  # [classes, units] minimum of the raw map over the cube
    high: np.ndarray  # [classes, units] maximum of the raw map over the cube

    @classmethod
    def create(
        cls, classes: int, units: int, dim_manifold: int, alpha: float, nb_spectral: int, seed: int
    ) -> RandmanManifolds:
        """Draw the manifolds from ``RandomState(seed)`` and compute their normalisation."""
        rng = np.random.RandomState(seed)
        shape = (units, dim_manifold, nb_spectral)
        params = [[rng.rand(*shape) for _ in range(3)] for _ in range(classes)]
        a, b, c = (np.stack([p[i] for p in params]) for i in range(3))
        grid = np.linspace(0.0, 1.0, _GRID)
        low = np.empty((classes, units))
        high = np.empty((classes, units))
        for k in range(classes):  # bounded memory: one class at a time
            g = _series(a[k], b[k], c[k], alpha, grid[:, None, None])  # [G, units, dim]
            low[k] = g.min(axis=0).sum(axis=-1)
            high[k] = g.max(axis=0).sum(axis=-1)
        return cls(a, b, c, float(alpha), low, high)

    @property
    def num_classes(self) -> int:
        """Number of class manifolds."""
        return self.a.shape[0]

    def __call__(self, labels: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """Map ``coords [S, dim]`` on the manifolds of ``labels [S]`` to ``[S, units]`` in [0,1]."""
        labels = np.asarray(labels, dtype=np.int64)
        coords = np.asarray(coords, dtype=np.float64)
        out = np.empty((labels.shape[0], self.a.shape[1]))
        for k in np.unique(labels):
            rows = labels == k
            raw = _series(self.a[k], self.b[k], self.c[k], self.alpha, coords[rows][:, None, :])
            span = np.maximum(self.high[k] - self.low[k], 1e-12)
            out[rows] = (raw.sum(axis=-1) - self.low[k]) / span
        return np.clip(out, 0.0, 1.0)


def _series(a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float, x: np.ndarray) -> np.ndarray:
    """``g_jk(x)`` for params ``[units, dim, nb]``; ``x`` broadcasts to ``[..., units, dim]``."""
    i = np.arange(1, a.shape[-1] + 1, dtype=np.float64)
    phase = 2 * np.pi * (i * x[..., None] * b + c)
    return (a * i**-alpha * np.sin(phase)).sum(axis=-1)


def _check_options(
    classes: int,
    units: int,
    dim_manifold: int,
    alpha: float,
    duration: float,
    seed: int,
    nb_spectral: int,
) -> tuple[float, float]:
    check_int(_NAME, "classes", classes, 2)
    check_int(_NAME, "units", units, 1)
    check_int(_NAME, "dim_manifold", dim_manifold, 1)
    check_int(_NAME, "nb_spectral", nb_spectral, 1)
    check_seed(_NAME, seed)
    alpha = check_float(_NAME, "alpha", alpha)
    duration = check_float(_NAME, "duration", duration)
    if alpha < 0:
        raise SnnkitError(f"{_NAME}: alpha must be >= 0 (higher = smoother manifolds), got {alpha}")
    if duration <= 0:
        raise SnnkitError(f"{_NAME}: duration must be > 0 ms, got {duration}")
    return alpha, duration


def randman_points(
    split: str,
    classes: int = 10,
    units: int = 50,
    dim_manifold: int = 1,
    alpha: float = 2.0,
    samples_per_class: int | None = None,
    seed: int = 0,
    nb_spectral: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled split samples: coords ``[S, dim]``, values ``[S, units]`` (in [0,1]), labels."""
    check_split(_NAME, split, tuple(_SPLIT_INDEX))
    alpha, _ = _check_options(classes, units, dim_manifold, alpha, 1.0, seed, nb_spectral)
    if samples_per_class is None:
        samples_per_class = _SAMPLES_PER_CLASS[split]
    check_int(_NAME, "samples_per_class", samples_per_class, 1)
    manifolds = RandmanManifolds.create(classes, units, dim_manifold, alpha, nb_spectral, seed)
    rng = np.random.default_rng((seed, _SPLIT_INDEX[split]))
    labels = np.repeat(np.arange(classes, dtype=np.int64), samples_per_class)
    coords = rng.random((labels.shape[0], dim_manifold))
    order = rng.permutation(labels.shape[0])
    labels, coords = labels[order], coords[order]
    return coords, manifolds(labels, coords), labels


def load(
    split: str,
    classes: int = 10,
    units: int = 50,
    dim_manifold: int = 1,
    alpha: float = 2.0,
    samples_per_class: int | None = None,
    duration: float = 50.0,
    seed: int = 0,
    nb_spectral: int = 3,
) -> SpikeDataset:
    """Load a split as events ``[S, units, 1]`` (one spike per unit; torch default dtype).

    ``samples_per_class`` defaults to 100 for train and 20 for validation/test.
    """
    _, duration = _check_options(classes, units, dim_manifold, alpha, duration, seed, nb_spectral)
    _, values, labels = randman_points(
        split, classes, units, dim_manifold, alpha, samples_per_class, seed, nb_spectral
    )
    times = torch.from_numpy(values * (SPAN * duration)).unsqueeze(2)
    events = Events(times.to(torch.get_default_dtype()), duration)
    names = tuple(str(k) for k in range(classes))
    return SpikeDataset(events, torch.from_numpy(labels), names, _NAME, split)


def randman_spec(
    classes: int = 10,
    units: int = 50,
    dim_manifold: int = 1,
    alpha: float = 2.0,
    samples_per_class: int | None = None,
    duration: float = 50.0,
    seed: int = 0,
    nb_spectral: int = 3,
) -> DatasetSpec:
    """The Randman registry entry; the given options become ``load``'s defaults."""
    _check_options(classes, units, dim_manifold, alpha, duration, seed, nb_spectral)
    base = {
        "classes": classes,
        "units": units,
        "dim_manifold": dim_manifold,
        "alpha": alpha,
        "samples_per_class": samples_per_class,
        "duration": duration,
        "seed": seed,
        "nb_spectral": nb_spectral,
    }

    def _load(split: str, **options: object) -> SpikeDataset:
        return load(split, **{**base, **options})  # type: ignore[arg-type]

    return DatasetSpec(
        name=_NAME,
        summary=(
            f"Randman random smooth manifolds (Zenke & Vogels 2021): {classes} classes, "
            f"{units} inputs, one spike per input"
        ),
        classes=tuple(str(k) for k in range(classes)),
        num_inputs=units,
        duration=float(duration),
        load=_load,
        splits=tuple(_SPLIT_INDEX),
    )
