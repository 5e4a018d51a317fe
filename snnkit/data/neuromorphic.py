"""N-MNIST, DVS128 Gesture, SHD and SSC as snnkit datasets (read by tonic, cached on disk).

``load(name, split, data_dir=..., **options)`` returns an :class:`EventDataset`: labels and
class names in memory, events in a memory-mapped cache (:mod:`snnkit.data.cache`), rasters
built per batch (:class:`BatchRaster`), so a dataset larger than memory trains as well.

Pipeline (docs/datasets.md has the options and their defaults):

1. tonic reads each recording (:mod:`snnkit.data.tonic_sources`);
2. per recording, cached: ``align`` (start at the first event), ``denoise`` (ms),
   ``downsample`` (pixels or audio channels pooled), ``merge_polarity``, crop to
   ``duration`` (ms), flatten to channel ``(p*H + y)*W + x``;
3. per batch: for the training split of SHD/SSC the EventProp-recipe augmentations
   ``blend`` and ``shift``, then the ``delay_line`` input (every split), then binning on
   ``dt`` (or into a fixed number of ``steps``).

Splits: ``test`` is the published test set; ``validation`` is carved from the published
training set (a seeded ``validation`` fraction, or one held-out speaker/user — SHD's
leave-one-speaker-out), except SSC, which has a published validation set.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from snnkit.data import cache, preprocessing
from snnkit.data.base import DatasetSpec, check_int, check_seed, check_split
from snnkit.data.event_dataset import Augment, BatchEvents, BatchRaster, EventDataset
from snnkit.data.tonic_sources import (
    SOURCES,
    Source,
    check_present,
    download,
    fingerprint,
    missing_splits,
    read_split,
)
from snnkit.errors import SnnkitError

__all__ = [
    "NEUROMORPHIC_RECIPES",
    "BatchEvents",
    "BatchRaster",
    "EventDataset",
    "cache_root",
    "data_root",
    "load",
    "neuromorphic_specs",
    "status",
]

SPLITS = ("train", "validation", "test")
CAMERA_ONLY = ("denoise", "merge_polarity")
AUDIO_ONLY = ("delay_line", "delay_ms", "shift", "blend", "validation_speaker")

# what each option defaults to, per dataset (None: not applicable)
DEFAULTS: dict[str, dict[str, Any]] = {
    "nmnist": {"duration": 300.0, "downsample": 1, "align": False, "validation": 0.1},
    "dvsgesture": {"duration": 1500.0, "downsample": 4, "align": True, "validation": 0.1},
    "shd": {"duration": 1000.0, "downsample": 1, "align": False, "validation": 0.1},
    "ssc": {"duration": 1000.0, "downsample": 1, "align": False, "validation": "official"},
}
SUMMARIES = {
    "nmnist": "N-MNIST (Orchard et al. 2015): saccading DVS digits, 34x34x2 sensor, 10 classes",
    "dvsgesture": "DVS128 Gesture (Amir et al. 2017): 11 hand/arm gestures, 128x128x2 sensor",
    "shd": "Spiking Heidelberg Digits (Cramer et al. 2020): 700 cochlea channels, 20 digits",
    "ssc": "Spiking Speech Commands (Cramer et al. 2020): 700 cochlea channels, 35 words",
}
# `snnkit run --dataset NAME` starting points (docs/datasets.md, "Recipes"). N-MNIST and
# DVS Gesture: the convolutional setups of the EXODUS paper's experiments (docs/results.md,
# "Convolutional recipes", cites the code each number comes from); SHD and SSC: untuned MLPs.
_LIF = {"lif": {"tau_mem": 20.0, "tau_syn": 5.0}, "if": {"tau_syn": 5.0}}
_MLP = {"arch": None, "hidden": "256", "neuron_options": _LIF, "layer_options": {}}


def _gain(threshold: float) -> float:
    """The weight_gain giving torch's default init std, 1/sqrt(3 fan_in), at ``threshold``
    (snnkit draws N(0, (gain * threshold)^2 / fan_in))."""
    return round(1.0 / (math.sqrt(3.0) * threshold), 4)


NEUROMORPHIC_RECIPES: dict[str, dict[str, Any]] = {
    "nmnist": {
        # SLAYER's N-MNIST network as EXODUS trained it: 100 bins over 300 ms
        "arch": "12c5p1-a2-64c5-a2-10",
        "dt": 3.0,
        "neuron_options": {
            "lif": {"tau_mem": 150.0, "threshold": 0.1},  # 50 steps
            "if": {"threshold": 0.1},
        },
        "layer_options": {"weight_gain": _gain(0.1)},
        "epochs": 75,
        "batch_size": 128,
        "lr": 1e-3,
        "schedule": "none",
    },
    "dvsgesture": {
        # EXODUS's DVS Gesture network: 64x64 input, 5 ms bins over 1.5 s (300 steps)
        "arch": (
            "8c3p1-d0.2-a2-16c3p1-d0.2-a2-32c3p1-d0.2-a2-64c3p1-d0.2-a2-"
            "64c3p1-d0.2-64c3p1-d0.2-d0.7-11"
        ),
        "dt": 5.0,
        "dataset_options": {"downsample": 2},
        "neuron_options": {
            "lif": {"tau_mem": 100.0, "threshold": 0.25},  # 20 steps
            "if": {"threshold": 0.25},
        },
        "layer_options": {"weight_gain": _gain(0.25)},
        "epochs": 100,
        "batch_size": 20,
        "lr": 1e-3,
        "schedule": "none",
    },
}
for _recipe in NEUROMORPHIC_RECIPES.values():
    camera = "arch" in _recipe
    _recipe.setdefault("schedule", "cosine")
    _recipe.setdefault("neuron_options", _LIF)
    _recipe.update(
        {
            # the convolutional recipes: cross-entropy of the summed output over time
            "loss": "ce_sum" if camera else "ce_max",
            "readout_tau": 20.0,
            # event methods (EventProp): LI readout trained with the loss-shaping loss; on
            # the cameras a fully connected net of the former starting point
            "events": {"loss": "sum_exp"} | (_MLP if camera else {}),
        }
    )

# SHD and SSC: the loss-shaping EventProp recipe (Nowotny, Turner & Knight 2025; their final
# SHD/SSC scans, github.com/tnowotny/genn_eventprop HPC_scripts/prepscan_SHD_JUWELS_47.py and
# prepscan_SSC_JUWELS_18.py on top of prepscan_SHD_JUWELS_21.py; docs/methods/eventprop.md
# cites each number): one recurrent hidden layer of LIF neurons (tau_mem 20, tau_syn 5 ms,
# theta 1) and an LI readout (tau 20 ms), 1 s trials, a 10-copy delay line 30 ms apart,
# shift 40 channels, blend 0.5, batch 32, Adam lr held fixed (2e-4, not the paper's 5e-3,
# see below), 50 epochs, the exponentially weighted sum loss, input weights scaled at the start so the hidden layer
# fires ~10 Hz (init_rate). The surrogate-gradient methods train the same network on
# the same data, time-stepped at the paper's dt = 1 ms, with the raster form of that loss.
_PAPER = {
    "epochs": 50,
    "batch_size": 32,
    # the paper's Adam lr is 5e-3; here its first step (~lr per weight) is 2.5x the mean
    # input weight after --init-rate, and hidden rates run away within a few batches
    # (docs/methods/eventprop.md, "learning rate"); 2e-4 learns on synthetic SHD
    "lr": 2e-4,
    "schedule": "none",
    "dt": 1.0,
    "loss": "ce_sum_exp",
    "readout_tau": 20.0,
    "init_rate": 10.0,
    "neuron_options": _LIF,
    "dataset_options": {
        "duration": 1000.0,
        "delay_line": 10,
        "delay_ms": 30.0,
        "shift": 40,
        "blend": 0.5,
    },
    # EventProp: spike buffers sized like the paper's (N_MAX_SPIKE 1500 over two trials);
    # input weights with the paper's mean:std of 3:1 (0.003 +- 0.001 with the delay line),
    # their scale set by init_rate (with snnkit's 1:1 default a few of the 256 neurons
    # fired past max_spikes at SHD scale while the mean rate was ~10 Hz)
    "events": {
        "loss": "sum_exp",
        "layer_options": {"max_spikes": 750, "weight_mean": 0.3, "weight_std": 0.1},
    },
}
NEUROMORPHIC_RECIPES["shd"] = {**_PAPER, "arch": "256r-20"}
NEUROMORPHIC_RECIPES["ssc"] = {**_PAPER, "arch": "256r-35"}


# -- where the data and the cache are ----------------------------------------------------------


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir``, else ``$SNNKIT_DATA``, else a one-line error."""
    value = data_dir if data_dir is not None else os.environ.get("SNNKIT_DATA")
    if not value:
        raise SnnkitError(
            "no data directory for the neuromorphic datasets: pass --data-dir DIR "
            "(or --data-opt data_dir=DIR) or set SNNKIT_DATA"
        )
    return Path(value).expanduser()


def cache_root(data_dir: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$SNNKIT_CACHE``, else ``<data_dir>/snnkit-cache``."""
    value = cache_dir if cache_dir is not None else os.environ.get("SNNKIT_CACHE")
    return Path(value).expanduser() if value else data_dir / "snnkit-cache"


# -- loading --------------------------------------------------------------------------------------


def _check_fraction(name: str, option: str, value: object, high_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 <= value < 1 if high_open else 0 <= value <= 1):
        interval = "[0, 1)" if high_open else "[0, 1]"
        raise SnnkitError(f"{name}: option {option} must be a number in {interval}, got {value!r}")
    return float(value)


def _check_positive(name: str, option: str, value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise SnnkitError(f"{name}: option {option} must be a positive number, got {value!r}")
    return float(value)


def _transforms(
    source: Source, opts: dict[str, Any]
) -> tuple[list[list[Any]], tuple[int, int, int]]:
    """The cached transform chain (what the cache key hashes) and the resulting sensor size."""
    w, h, p = source.sensor_size
    f = opts["downsample"]
    chain: list[list[Any]] = [["read", {"tonic": source.tonic_class, **opts["tonic"]}]]
    if opts["align"]:
        chain.append(["align", "first event at t=0"])
    if opts["denoise"]:
        chain.append(["denoise", {"filter_ms": opts["denoise"], "neighbours": 8}])
    if f > 1:
        chain.append(["downsample", {"factor": f}])
        w, h = -(-w // f), (-(-h // f) if source.kind == "camera" else h)
    if opts["merge_polarity"]:
        chain.append(["merge_polarity", True])
        p = 1
    chain.append(["crop", {"duration_ms": opts["duration"]}])
    chain.append(["flatten", "(p*H + y)*W + x", [w, h, p]])
    return chain, (w, h, p)


def _build(source: Source, data_dir: Path, split: str, opts: dict[str, Any]):
    """A cache builder: read ``split`` with tonic, apply the per-recording transforms."""
    width, height, _ = source.sensor_size
    f = opts["downsample"]
    _, (w2, h2, _) = _transforms(source, opts)

    def build(writer: cache.RecordingWriter) -> None:
        recordings, _, classes = read_split(source, data_dir, split, opts["tonic"])
        (writer.directory / "classes.txt").write_text("\n".join(classes) + "\n")
        for rec in recordings:
            x, y, p, t = rec.x, rec.y, rec.p, rec.t
            if opts["align"] and len(t):
                t = t - t.min()
            if opts["denoise"]:
                filter_us = int(round(opts["denoise"] * 1000))
                keep = preprocessing.denoise(x, y, t, filter_us, width, height)
                x, y, p, t = x[keep], y[keep], p[keep], t[keep]
            if f > 1:
                x, _ = preprocessing.downsample(x, width, f)
                if source.kind == "camera":
                    y, _ = preprocessing.downsample(y, height, f)
            if opts["merge_polarity"]:
                p = np.zeros_like(p)
            ms = t.astype(np.float64) / 1000.0
            keep = preprocessing.crop(ms, opts["duration"])
            ms, ch = ms[keep], preprocessing.flatten(x[keep], y[keep], p[keep], w2, h2)
            order = np.argsort(ms, kind="stable")
            writer.add(ms[order], ch[order], rec.label, rec.group)

    return build


def _source_split(
    source: Source, data_dir: Path, root: Path, split: str, opts: dict[str, Any]
) -> cache.CachedRecordings:
    """The cached, preprocessed source split (built on first use)."""
    check_present(source, data_dir, [split])
    chain, sensor = _transforms(source, opts)
    payload = {
        "format": cache.FORMAT,
        "dataset": source.name,
        "source_split": split,
        "files": fingerprint(source, data_dir, split),
        "transforms": chain,
        "sensor_size": list(sensor),
    }
    return cache.get_or_build(root, payload, _build(source, data_dir, split, opts))


def _classes(store: cache.CachedRecordings, fallback: tuple[str, ...]) -> tuple[str, ...]:
    path = store.path / "classes.txt"
    names = tuple(path.read_text().splitlines()) if path.is_file() else ()
    return names or fallback


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    duration: float | None = None,
    downsample: int | None = None,
    denoise: float | None = None,
    merge_polarity: bool | None = None,
    align: bool | None = None,
    steps: int | None = None,
    validation: float | str | None = None,
    validation_speaker: int | None = None,
    validation_user: int | None = None,
    seed: int = 0,
    delay_line: int | None = None,
    delay_ms: float | None = None,
    shift: int | None = None,
    blend: float | None = None,
    first_saccade_only: bool | None = None,
) -> EventDataset:
    """Load ``split`` (train, validation or test) of the tonic dataset ``name``.

    Options left at ``None`` take the dataset's defaults (:data:`DEFAULTS`); options that do
    not apply to the dataset (e.g. ``shift`` for a camera dataset) are errors.
    """
    if name not in SOURCES:
        raise SnnkitError(
            f"unknown neuromorphic dataset {name!r}; choose one of {', '.join(SOURCES)}"
        )
    source = SOURCES[name]
    check_split(name, split, SPLITS)
    given = {
        "denoise": denoise,
        "merge_polarity": merge_polarity,
        "delay_line": delay_line,
        "delay_ms": delay_ms,
        "shift": shift,
        "blend": blend,
        "validation_speaker": validation_speaker,
        "validation_user": validation_user,
        "first_saccade_only": first_saccade_only,
    }
    not_here = {
        "camera": AUDIO_ONLY,
        "audio": CAMERA_ONLY + ("first_saccade_only", "validation_user"),
    }[source.kind]
    if name != "nmnist":
        not_here += ("first_saccade_only",)
    if name != "dvsgesture":
        not_here += ("validation_user",)
    for option in not_here:
        if given.get(option) is not None:
            raise SnnkitError(
                f"{name}: option {option} does not apply to this dataset "
                f"(see docs/datasets.md for the options of each dataset)"
            )
    d = DEFAULTS[name]
    opts: dict[str, Any] = {
        "duration": _check_positive(
            name, "duration", d["duration"] if duration is None else duration
        ),
        "downsample": check_int(
            name, "downsample", d["downsample"] if downsample is None else downsample, 1
        ),
        "denoise": 0.0
        if denoise is None or denoise == 0
        else _check_positive(name, "denoise", denoise),
        "merge_polarity": bool(merge_polarity),
        "align": d["align"] if align is None else bool(align),
        "tonic": {"first_saccade_only": True} if first_saccade_only else {},
    }
    if steps is not None:
        check_int(name, "steps", steps, 1)
    seed = check_seed(name, seed)
    copies = 1 if delay_line is None else check_int(name, "delay_line", delay_line, 1)
    delay = 0.0 if delay_ms is None else _check_positive(name, "delay_ms", delay_ms)
    if copies > 1 and delay_ms is None:
        raise SnnkitError(f"{name}: delay_line={copies} needs delay_ms (the delay between copies)")
    augment = Augment(
        shift=0 if shift is None else check_int(name, "shift", shift, 0),
        blend=0.0 if blend is None else _check_fraction(name, "blend", blend, high_open=False),
        seed=seed,
    )
    validation = d["validation"] if validation is None else validation
    if validation == "official" and "valid" not in source.layout:
        raise SnnkitError(
            f"{name}: there is no published validation set; use validation=FRACTION"
            + (" or validation_speaker=ID" if source.group == "speaker" else "")
        )
    if validation != "official":
        validation = _check_fraction(name, "validation", validation)

    data_dir = data_root(data_dir)
    root = cache_root(data_dir, cache_dir)
    held_out = validation_speaker if validation_speaker is not None else validation_user
    if split == "test":
        store = _source_split(source, data_dir, root, "test", opts)
        index = np.arange(len(store))
    elif validation == "official" and held_out is None:
        store = _source_split(
            source, data_dir, root, "valid" if split == "validation" else "train", opts
        )
        index = np.arange(len(store))
    else:
        store = _source_split(source, data_dir, root, "train", opts)
        index = _carve(name, store, split, validation, held_out, source.group, seed)
    if len(index) == 0:
        raise SnnkitError(
            f"{name}: the {split} split is empty; check the files or the split options"
        )
    _, sensor = _transforms(source, opts)
    return EventDataset(
        name=name,
        split=split,
        classes=_classes(store, source.classes),
        sensor_size=sensor,
        store=store,
        index=index,
        duration=opts["duration"],
        delay_line=copies,
        delay_ms=delay,
        steps=steps,
        augment=augment if split == "train" else None,
    )


def _carve(name, store, split, fraction, held_out, group_kind, seed) -> np.ndarray:
    """Indices of ``split`` (train or validation) within the published training set."""
    n = len(store)
    if held_out is not None:
        check_int(name, f"validation_{group_kind}", held_out, 0)
        groups = np.asarray(store.groups)
        if not (groups == held_out).any():
            present = ", ".join(str(g) for g in np.unique(groups).tolist())
            raise SnnkitError(
                f"{name}: no {group_kind} {held_out} in the training set; "
                f"its {group_kind}s are {present}"
            )
        val = groups == held_out
    else:
        n_val = max(1, round(fraction * n)) if fraction > 0 else 0
        if n_val >= n:
            raise SnnkitError(
                f"{name}: validation={fraction} leaves no training recordings out of {n}; "
                "use a smaller fraction"
            )
        val = np.zeros(n, dtype=bool)
        val[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return np.flatnonzero(val if split == "validation" else ~val)


# -- registry entries and status -------------------------------------------------------------------


def status(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where ``name`` stands: ``present``/``missing`` files, ``cached`` entries, tonic."""
    source = SOURCES[name]
    try:
        root = data_root(data_dir)
    except SnnkitError:
        return "no data dir (--data-dir, SNNKIT_DATA)"
    missing = missing_splits(source, root)
    if not missing:
        text = "present"
    elif len(missing) == len(source.layout):
        text = "missing"
    else:
        text = f"partial (no {', '.join(missing)})"
    n = len(cache.entries(cache_root(root), name))
    if n:
        text += f", cached ({n})"
    if importlib.util.find_spec("tonic") is None:
        text += ", tonic not installed"
    return text


def _download(name: str, data_dir: str | os.PathLike | None = None) -> None:
    download(SOURCES[name], data_root(data_dir))


def neuromorphic_specs() -> list[DatasetSpec]:
    """Registry entries for nmnist, dvsgesture, shd and ssc (with their recipes)."""
    specs = []
    for name, source in SOURCES.items():
        d = DEFAULTS[name]
        w, h, p = source.sensor_size
        f = d["downsample"]
        inputs = (-(-w // f)) * (-(-h // f) if source.kind == "camera" else h) * p

        def _load(split: str, _name: str = name, **options: Any) -> EventDataset:
            return load(_name, split, **options)

        specs.append(
            DatasetSpec(
                name=name,
                summary=SUMMARIES[name],
                classes=source.classes,
                num_inputs=inputs,
                duration=d["duration"],
                load=_load,
                splits=SPLITS,
                source="tonic",
                defaults=NEUROMORPHIC_RECIPES[name],
                status=lambda data_dir=None, _n=name: status(_n, data_dir),
                download=lambda data_dir=None, _n=name: _download(_n, data_dir),
            )
        )
    return specs
