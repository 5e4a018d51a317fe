"""Yin-Yang (Kriener, Göltz & Petrovici 2021): a small 2-D, 3-class task, latency coded.

Points are drawn in the unit disc centred at (0.5, 0.5) with the paper's sampling order, so
the canonical splits (train: 5000 samples, seed 42; validation: 1000, seed 41; test: 1000,
seed 40) are reproduced exactly. Each sample's features ``(x, y, 1-x, 1-y)`` become one spike
each at ``t_min + v*(t_max - t_min)``; a fifth (bias) input spikes once at ``bias_time``.
"""

from __future__ import annotations

import math
from functools import lru_cache

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

__all__ = ["CLASSES", "SPLITS", "load", "yinyang_class", "yinyang_points", "yinyang_spec"]

CLASSES = ("yang", "yin", "dot")
SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}
R_BIG = 0.5
R_SMALL = 0.1
_NAME = "yinyang"


def yinyang_class(x: float, y: float, r_small: float = R_SMALL, r_big: float = R_BIG) -> int:
    """Class of point ``(x, y)``: 0 = yang, 1 = yin, 2 = dot."""
    d_right = math.hypot(x - 1.5 * r_big, y - r_big)
    d_left = math.hypot(x - 0.5 * r_big, y - r_big)
    if d_right < r_small or d_left < r_small:
        return 2
    in_yin = (
        d_right <= r_small
        or r_small < d_left <= 0.5 * r_big
        or (y > r_big and d_right > 0.5 * r_big)
    )
    return 1 if in_yin else 0


@lru_cache(maxsize=8)
def _points(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    features = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2 * R_BIG
            if math.sqrt((x - R_BIG) ** 2 + (y - R_BIG) ** 2) > R_BIG:
                continue
            c = yinyang_class(x, y)
            if c == goal:
                break
        features[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = c
    features.flags.writeable = False
    labels.flags.writeable = False
    return features, labels


def yinyang_points(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``size`` points: features ``(x, y, 1-x, 1-y)`` float64 ``[S, 4]``, labels ``[S]``."""
    check_int(_NAME, "size", size, 1)
    check_seed(_NAME, seed)
    features, labels = _points(size, seed)
    return features.copy(), labels.copy()


def load(
    split: str,
    t_min: float = 0.0,
    t_max: float = 30.0,
    bias_time: float = 0.0,
    duration: float = 60.0,
    size: int | None = None,
    seed: int | None = None,
) -> SpikeDataset:
    """Load a split as latency-coded events ``[S, 5, 1]`` (times in ms, torch default dtype).

    ``size``/``seed`` override the split's canonical values (e.g. a smaller size for tests).
    """
    check_split(_NAME, split, tuple(SPLITS))
    t_min = check_float(_NAME, "t_min", t_min)
    t_max = check_float(_NAME, "t_max", t_max)
    bias_time = check_float(_NAME, "bias_time", bias_time)
    duration = check_float(_NAME, "duration", duration)
    if not t_max > t_min >= 0:
        raise SnnkitError(
            f"{_NAME}: need t_max > t_min >= 0 for the latency code, got t_min={t_min}, "
            f"t_max={t_max}; features map to spike times in [t_min, t_max]"
        )
    if bias_time < 0:
        raise SnnkitError(
            f"{_NAME}: bias_time must be >= 0 (spike times start at 0), got {bias_time}"
        )
    if not (duration > t_max and duration > bias_time):
        raise SnnkitError(
            f"{_NAME}: duration={duration} must exceed t_max={t_max} and bias_time={bias_time} "
            "so every input spike lies inside the window; increase duration"
        )
    default_size, default_seed = SPLITS[split]
    features, labels = yinyang_points(
        default_size if size is None else size, default_seed if seed is None else seed
    )
    times = np.empty((features.shape[0], 5), dtype=np.float64)
    times[:, :4] = t_min + features * (t_max - t_min)
    times[:, 4] = bias_time
    events = Events(torch.from_numpy(times).unsqueeze(2).to(torch.get_default_dtype()), duration)
    return SpikeDataset(events, torch.from_numpy(labels), CLASSES, _NAME, split)


def yinyang_spec(
    t_min: float = 0.0, t_max: float = 30.0, bias_time: float = 0.0, duration: float = 60.0
) -> DatasetSpec:
    """The Yin-Yang registry entry; the latency-code options become ``load``'s defaults."""
    base = {"t_min": t_min, "t_max": t_max, "bias_time": bias_time, "duration": duration}

    def _load(split: str, **options: object) -> SpikeDataset:
        return load(split, **{**base, **options})  # type: ignore[arg-type]

    return DatasetSpec(
        name=_NAME,
        summary="Yin-Yang 2-D 3-class task (Kriener et al. 2021), 4 latency-coded inputs + bias",
        classes=CLASSES,
        num_inputs=5,
        duration=float(duration),
        load=_load,
        splits=tuple(SPLITS),
    )
