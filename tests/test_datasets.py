"""Tests for the built-in datasets (Yin-Yang, Randman) and the dataset containers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnkit.data import (
    DatasetSpec,
    RandmanManifolds,
    SpikeDataset,
    randman_points,
    randman_spec,
    yinyang_class,
    yinyang_points,
    yinyang_spec,
)
from snnkit.errors import SnnkitError
from snnkit.events import Events

# -- Yin-Yang --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "counts"),
    [
        ("train", [1681, 1702, 1617]),
        ("validation", [316, 336, 348]),
        ("test", [350, 316, 334]),
    ],
)
def test_yinyang_canonical_splits(split, counts):
    ds = yinyang_spec().load(split)
    assert isinstance(ds, SpikeDataset)
    assert ds.split == split and ds.name == "yinyang"
    assert torch.bincount(ds.labels, minlength=3).tolist() == counts
    assert ds.labels.dtype == torch.long


def test_yinyang_first_training_sample():
    features, labels = yinyang_points(5000, 42)
    assert features.dtype == np.float64 and features.shape == (5000, 4)
    np.testing.assert_allclose(features[0], [0.68031, 0.45050, 0.31969, 0.54950], atol=5e-6)
    assert labels[0] == 2


def test_yinyang_feature_ranges_and_classes():
    features, labels = yinyang_points(1000, 41)
    assert features.min() >= 0 and features.max() <= 1
    np.testing.assert_allclose(features[:, 2], 1 - features[:, 0])
    np.testing.assert_allclose(features[:, 3], 1 - features[:, 1])
    # inside the big circle, and labels agree with the class function
    assert (np.hypot(features[:, 0] - 0.5, features[:, 1] - 0.5) <= 0.5).all()
    assert all(yinyang_class(x, y) == c for (x, y, _, _), c in zip(features, labels, strict=True))


def test_yinyang_class_regions():
    assert yinyang_class(0.75, 0.5) == 2  # centre of the right dot
    assert yinyang_class(0.25, 0.5) == 2  # centre of the left dot
    assert yinyang_class(0.5, 0.9) == 1  # top half, far from the right eye: yin
    assert yinyang_class(0.5, 0.1) == 0  # bottom half: yang


def test_yinyang_latency_code():
    spec = yinyang_spec()
    assert spec.num_inputs == 5 and spec.classes == ("yang", "yin", "dot")
    assert spec.available() and spec.source == "built-in" and dict(spec.defaults) == {}
    ds = spec.load("train", size=50)
    assert ds.events.times.shape == (50, 5, 1) and ds.num_inputs == 5 and ds.num_classes == 3
    assert ds.events.duration == 60.0
    features, _ = yinyang_points(50, 42)
    times = ds.events.times[..., 0].double()
    np.testing.assert_allclose(times[:, :4].numpy(), 30.0 * features, rtol=1e-6)
    assert times[0, 0].item() == pytest.approx(0.68031 * 30.0, abs=1e-3)
    assert (times[:, 4] == 0.0).all()  # bias spike at t = 0

    custom = spec.load("test", size=20, t_min=5.0, t_max=15.0, bias_time=2.0, duration=20.0)
    f_test, _ = yinyang_points(20, 40)
    t = custom.events.times[..., 0].double().numpy()
    np.testing.assert_allclose(t[:, :4], 5.0 + 10.0 * f_test, rtol=1e-6)
    assert (t[:, 4] == 2.0).all()
    assert custom.events.counts().eq(1).all()


def test_yinyang_raster():
    ds = yinyang_spec().load("validation", size=30)
    r = ds.raster(dt=1.0)
    assert r.shape == (60, 30, 5) and r.dtype == torch.float32
    assert r.sum(0).eq(1).all()  # exactly one spike per input
    assert (r[0, :, 4] == 1).all()  # the bias in bin 0
    assert ds.raster(dt=1.0) is r  # cached
    assert ds.raster(dt=0.5).shape[0] == 120


def test_yinyang_determinism_and_seed():
    a = yinyang_spec().load("train", size=100)
    b = yinyang_spec().load("train", size=100)
    assert torch.equal(a.events.times, b.events.times) and torch.equal(a.labels, b.labels)
    c = yinyang_spec().load("train", size=100, seed=7)
    assert not torch.equal(a.events.times, c.events.times)
    f1, _ = yinyang_points(10, 3)
    f1[:] = -1  # returned arrays are copies: mutating them does not poison the cache
    f2, _ = yinyang_points(10, 3)
    assert f2.min() >= 0


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"t_min": 10.0, "t_max": 5.0}, "t_max > t_min"),
        ({"t_min": -1.0}, "t_min"),
        ({"duration": 30.0}, "duration"),
        ({"bias_time": 70.0}, "bias_time"),
        ({"bias_time": -1.0}, "bias_time"),
        ({"size": 0}, "size"),
        ({"seed": -1}, "seed"),
        ({"t_max": float("nan")}, "t_max"),
    ],
)
def test_yinyang_option_validation(options, needle):
    with pytest.raises(SnnkitError, match=needle):
        yinyang_spec().load("train", **options)


def test_unknown_split():
    with pytest.raises(SnnkitError, match="split"):
        yinyang_spec().load("dev")
    with pytest.raises(SnnkitError, match="split"):
        randman_spec().load("dev")


# -- Randman ---------------------------------------------------------------------------------


def test_randman_shapes_and_ranges():
    spec = randman_spec(classes=4, units=12, duration=40.0)
    assert isinstance(spec, DatasetSpec)
    assert spec.num_inputs == 12 and spec.classes == ("0", "1", "2", "3") and spec.available()
    ds = spec.load("train", samples_per_class=25)
    assert ds.events.times.shape == (100, 12, 1)
    assert ds.events.duration == 40.0
    t = ds.events.times
    assert torch.isfinite(t).all() and (t >= 0).all() and (t < 40.0).all()
    assert t.max() > 30.0 and t.min() < 10.0  # values use the whole [0, 1] range
    assert torch.bincount(ds.labels).tolist() == [25] * 4
    assert not torch.equal(ds.labels[:25], torch.zeros(25, dtype=torch.long))  # shuffled
    assert len(spec.load("validation")) == 4 * 20 and len(spec.load("train")) == 4 * 100


def test_randman_deterministic_and_seeded():
    a = randman_spec(seed=3).load("train", samples_per_class=10)
    b = randman_spec(seed=3).load("train", samples_per_class=10)
    assert torch.equal(a.events.times, b.events.times) and torch.equal(a.labels, b.labels)
    c = randman_spec(seed=4).load("train", samples_per_class=10)
    assert not torch.equal(a.events.times, c.events.times)


def test_randman_splits_share_manifolds_but_differ():
    opts = {"classes": 3, "units": 8, "dim_manifold": 2, "seed": 5, "samples_per_class": 30}
    manifolds = RandmanManifolds.create(3, 8, 2, 2.0, 3, seed=5)
    other = RandmanManifolds.create(3, 8, 2, 2.0, 3, seed=6)
    coords = {}
    for split in ("train", "validation", "test"):
        x, values, labels = randman_points(split, **opts)
        assert x.shape == (90, 2) and values.shape == (90, 8)
        np.testing.assert_allclose(values, manifolds(labels, x))
        assert not np.allclose(values, other(labels, x))
        coords[split] = x
    assert not np.allclose(coords["train"], coords["validation"])
    assert not np.allclose(coords["validation"], coords["test"])


def test_randman_normalisation_covers_unit_interval():
    m = RandmanManifolds.create(2, 6, 1, 2.0, 3, seed=0)
    x = np.linspace(0, 1, 4001)[:, None]
    for k in range(2):
        v = m(np.full(len(x), k), x)
        np.testing.assert_allclose(v.min(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(v.max(axis=0), 1.0, atol=1e-4)
    # smoothness: a higher alpha damps the high harmonics, so neighbouring points move less
    rough = RandmanManifolds.create(1, 20, 1, 0.0, 3, seed=1)
    smooth = RandmanManifolds.create(1, 20, 1, 4.0, 3, seed=1)
    lab = np.zeros(len(x), dtype=np.int64)
    assert (
        np.abs(np.diff(smooth(lab, x), axis=0)).sum() < np.abs(np.diff(rough(lab, x), axis=0)).sum()
    )


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"classes": 1}, "classes"),
        ({"units": 0}, "units"),
        ({"dim_manifold": 0}, "dim_manifold"),
        ({"alpha": -1.0}, "alpha"),
        ({"samples_per_class": 0}, "samples_per_class"),
        ({"duration": 0.0}, "duration"),
        ({"seed": 1.5}, "seed"),
        ({"nb_spectral": 0}, "nb_spectral"),
        ({"units": True}, "units"),
    ],
)
def test_randman_option_validation(options, needle):
    with pytest.raises(SnnkitError, match=needle):
        randman_spec().load("train", **options)


# -- containers ------------------------------------------------------------------------------


def test_spike_dataset_validation():
    ev = Events(torch.zeros(3, 2, 1), 1.0)
    with pytest.raises(SnnkitError, match="labels"):
        SpikeDataset(ev, torch.tensor([0, 1]), ("a", "b"), "x", "train")
    with pytest.raises(SnnkitError, match="labels"):
        SpikeDataset(ev, torch.tensor([0, 1, 2]), ("a", "b"), "x", "train")
    with pytest.raises(SnnkitError, match="long"):
        SpikeDataset(ev, torch.tensor([0.0, 1.0, 1.0]), ("a", "b"), "x", "train")
    ds = SpikeDataset(ev, torch.tensor([0, 1, 1]), ("a", "b"), "x", "train")
    assert len(ds) == 3 and ds.num_inputs == 2 and ds.num_classes == 2


def test_dataset_spec_available_for_missing_package():
    spec = yinyang_spec()
    missing = DatasetSpec(
        name="nope",
        summary="",
        classes=("a",),
        num_inputs=1,
        duration=1.0,
        load=spec.load,
        source="snnkit_surely_not_installed_pkg",
    )
    assert not missing.available()
