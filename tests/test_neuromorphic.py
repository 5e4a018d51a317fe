"""N-MNIST, DVS Gesture, SHD and SSC through tonic's real loaders, on tiny files written in
the exact on-disk formats (tests/fixtures/neuromorphic_files.py), with the network blocked:
loading, bad files, preprocessing against brute-force references, splits, the cache, the
CLI and a one-epoch ``snnkit run --dataset shd``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.neuromorphic_files import (
    NETWORK_BLOCKED,
    Camera,
    block_network,
    make_dvsgesture,
    make_hsd,
    make_nmnist,
    write_dvsgesture,
    write_hsd,
    write_nmnist,
)

from snnkit.data import preprocessing as pre
from snnkit.data.neuromorphic import BatchRaster, EventDataset, load
from snnkit.errors import SnnkitError
from snnkit.events import Events

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any socket connection in these tests raises: nothing may download."""
    block_network(monkeypatch)
    monkeypatch.delenv("SNNKIT_DATA", raising=False)
    monkeypatch.delenv("SNNKIT_CACHE", raising=False)


@pytest.fixture(scope="module")
def tonic():
    """tonic, or a skip where it is not installed (a failure under SNNKIT_REQUIRE_DATASETS=1,
    as in `make test`, which installs the datasets extra)."""
    if os.environ.get("SNNKIT_REQUIRE_DATASETS") == "1":
        import h5py  # noqa: F401
        import tonic

        return tonic
    pytest.importorskip("h5py")
    return pytest.importorskip("tonic")


@pytest.fixture(scope="module")
def data(tmp_path_factory, tonic):
    """All four datasets, tiny, in one data directory (read-only for the tests)."""
    root = tmp_path_factory.mktemp("data")
    written = {
        "nmnist": make_nmnist(root, {"train": 4, "test": 2}),
        "dvsgesture": make_dvsgesture(root, {"train": [1, 2, 3, 5], "test": [24]}),
        "shd": make_hsd(root, "shd", {"train": 24, "test": 9}, speakers=(1, 2, 3, 4)),
        "ssc": make_hsd(root, "ssc", {"train": 12, "valid": 6, "test": 6}, seed=1),
    }
    return root, written


def opts(tmp_path, **kw):
    """Options with a private cache directory (tests never share cache entries)."""
    return {"cache_dir": tmp_path / "cache", **kw}


def recording_ms(ds: EventDataset, i: int) -> tuple[np.ndarray, np.ndarray]:
    t, ch = ds.recording(i)
    return np.asarray(t, np.float64), np.asarray(ch, np.int64)


def stable_by_time(t, ch):
    order = np.argsort(t, kind="stable")
    return t[order], ch[order]


# -- the four datasets read by tonic ---------------------------------------------------------


def test_nmnist_reads_the_binary_format(data, tmp_path, tonic):
    root, written = data
    ds = load("nmnist", "test", data_dir=root, **opts(tmp_path))
    assert len(ds) == 6 and ds.sensor_size == (34, 34, 2) and ds.num_inputs == 34 * 34 * 2
    assert ds.classes == tuple(tonic.datasets.NMNIST.classes)
    expected = written["nmnist"]["test"]  # tonic walks digit folders, then files, sorted
    assert ds.labels.tolist() == [label for _, label, _ in expected]
    for i, (_, _, ev) in enumerate(expected):
        t, ch = stable_by_time(ev.t / 1000.0, (ev.p * 34 + ev.y) * 34 + ev.x)
        got_t, got_ch = recording_ms(ds, i)
        np.testing.assert_allclose(got_t, t, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(got_ch, ch)
    assert (ds.groups == -1).all()


def test_dvsgesture_reads_the_npy_format(data, tmp_path, tonic):
    root, written = data
    ds = load("dvsgesture", "test", data_dir=root, downsample=1, **opts(tmp_path))
    assert ds.sensor_size == (128, 128, 2) and len(ds) == 3
    assert ds.labels.tolist() == [0, 1, 2]  # recordings in path order, whatever the filesystem
    assert ds.classes == tuple(tonic.datasets.DVSGesture.classes)
    by_label = {w[1]: w for w in written["dvsgesture"]["test"]}  # one user: labels unique
    for i in range(len(ds)):
        _, label, user, ev = by_label[int(ds.labels[i])]
        assert ds.groups[i] == user
        t, ch = stable_by_time((ev.t - ev.t.min()).astype(float), (ev.p * 128 + ev.y) * 128 + ev.x)
        got_t, got_ch = recording_ms(ds, i)  # aligned: first event at 0 ms
        np.testing.assert_allclose(got_t, t, atol=1e-6)
        np.testing.assert_array_equal(got_ch, ch)
    # default: 4x4 pixels pooled -> 32x32x2
    pooled = load("dvsgesture", "test", data_dir=root, **opts(tmp_path))
    assert pooled.sensor_size == (32, 32, 2) and pooled.num_inputs == 2048
    ev = by_label[int(pooled.labels[0])][3]
    _, ch = stable_by_time(ev.t.astype(float), (ev.p * 32 + ev.y // 4) * 32 + ev.x // 4)
    np.testing.assert_array_equal(recording_ms(pooled, 0)[1], ch)


@pytest.mark.parametrize("name", ["shd", "ssc"])
def test_hsd_reads_the_hdf5_format(data, tmp_path, name):
    root, written = data
    ds = load(name, "test", data_dir=root, **opts(tmp_path))
    w = written[name]["test"]
    assert ds.classes == ("zero", "one", "two") and ds.sensor_size == (700, 1, 1)
    assert ds.labels.tolist() == w["labels"].tolist()
    np.testing.assert_array_equal(ds.groups, w["speakers"])
    for i in range(len(ds)):
        # tonic: seconds (float16 here) -> whole microseconds; snnkit: -> ms
        us = np.trunc(w["times"][i].astype(np.float64) * 1e6)
        t, ch = stable_by_time(us / 1000.0, np.asarray(w["units"][i], np.int64))
        got_t, got_ch = recording_ms(ds, i)
        np.testing.assert_allclose(got_t, t, atol=1e-3)
        np.testing.assert_array_equal(got_ch, ch)


def test_hsd_float32_times_read_as_well(tmp_path, tonic):
    rng = np.random.default_rng(3)
    times = [np.sort(rng.uniform(0, 0.9, 20)) for _ in range(4)]
    units = [rng.integers(0, 700, 20) for _ in range(4)]
    for split in ("train", "test"):
        write_hsd(
            tmp_path / "SHD" / f"shd_{split}.h5",
            times,
            units,
            np.arange(4) % 2,
            ["a", "b"],
            np.array([0, 0, 1, 1]),
            time_dtype=np.float32,
        )
    ds = load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    us = np.trunc(times[2].astype(np.float32).astype(np.float64) * 1e6)
    np.testing.assert_allclose(recording_ms(ds, 2)[0], np.sort(us / 1000), atol=1e-3)


@pytest.mark.parametrize("name", ["nmnist", "dvsgesture", "shd", "ssc"])
def test_batch_raster_equals_events_to_raster(data, tmp_path, name):
    root, _ = data
    ds = load(name, "train", data_dir=root, **opts(tmp_path))
    raster = ds.raster(7.0)
    assert isinstance(raster, BatchRaster)
    assert tuple(raster.shape) == (pre.num_steps(ds.duration, 7.0), len(ds), ds.num_inputs)
    index = torch.tensor([2, 0, len(ds) - 1])
    got = raster.to("cpu", torch.float64)[:, index]
    events = ds.events[index]
    assert isinstance(events, Events) and events.duration == ds.duration
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, events.to_raster(7.0, dtype=torch.float64), rtol=0, atol=0)
    assert int(got.sum()) == sum(len(ds.recording(int(i))[0]) for i in index)


def test_real_tonic_classes_do_the_reading_and_the_cache_skips_them(
    data, tmp_path, tonic, monkeypatch
):
    root, _ = data
    calls = []
    original = tonic.datasets.SHD.__getitem__

    def spy(self, index):
        calls.append(index)
        return original(self, index)

    monkeypatch.setattr(tonic.datasets.SHD, "__getitem__", spy)
    first = load("shd", "test", data_dir=root, **opts(tmp_path))
    assert sorted(calls) == list(range(9))
    calls.clear()
    again = load("shd", "test", data_dir=root, **opts(tmp_path))
    assert calls == [] and again.store.path == first.store.path
    assert isinstance(again.store.times, np.memmap)  # mapped, not read into memory
    torch.testing.assert_close(again.raster(5.0).dense(), first.raster(5.0).dense())
    # a cached split loads even without tonic
    monkeypatch.setitem(sys.modules, "tonic", None)
    monkeypatch.setitem(sys.modules, "tonic.datasets", None)
    assert len(load("shd", "test", data_dir=root, **opts(tmp_path))) == 9


# -- missing and bad files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nmnist", "NMNIST/Train/<digit>/*.bin"),
        ("dvsgesture", "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy"),
        ("shd", "SHD/shd_train.h5"),
        ("ssc", "SSC/ssc_train.h5"),
    ],
)
def test_missing_dataset_names_the_files_and_the_command(tmp_path, name, expected):
    with pytest.raises(SnnkitError) as err:
        load(name, "train", data_dir=tmp_path, **opts(tmp_path))
    message = str(err.value)
    assert "\n" not in message and expected in message
    assert f"snnkit datasets download {name} --data-dir {tmp_path}" in message


def test_no_data_directory_is_one_line(monkeypatch):
    with pytest.raises(SnnkitError, match="pass --data-dir DIR .* or set SNNKIT_DATA"):
        load("shd", "train")


def test_data_directory_from_the_environment(data, tmp_path, monkeypatch):
    root, _ = data
    monkeypatch.setenv("SNNKIT_DATA", str(root))
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "env-cache"))
    ds = load("shd", "test")
    assert ds.store.path.parent == tmp_path / "env-cache"


def test_missing_tonic_says_how_to_install(data, tmp_path, monkeypatch):
    root, _ = data
    monkeypatch.setitem(sys.modules, "tonic", None)
    monkeypatch.setitem(sys.modules, "tonic.datasets", None)
    with pytest.raises(SnnkitError, match=r"pip install 'snnkit\[datasets\]'"):
        load("shd", "test", data_dir=root, **opts(tmp_path))


def test_snnkit_imports_and_lists_datasets_without_tonic():
    code = (
        "import sys; sys.modules['tonic'] = None; sys.modules['h5py'] = None\n"
        "import snnkit, snnkit.cli, snnkit.data.neuromorphic\n"
        "from snnkit.registry import get_registry\n"
        "spec = get_registry().dataset('shd')\n"
        "print(spec.status(None), '|', spec.status('/nonexistent'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "missing, tonic not installed" in proc.stdout


def _two_nmnist_files(root: Path) -> Path:
    ev = Camera(np.array([1, 2]), np.array([3, 4]), np.array([0, 1]), np.array([10, 20]))
    write_nmnist(root, "test", 0, 0, ev)
    return write_nmnist(root, "test", 1, 0, ev)


def test_truncated_nmnist_file(tmp_path, tonic):
    bad = _two_nmnist_files(tmp_path)
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(SnnkitError) as err:
        load("nmnist", "test", data_dir=tmp_path, **opts(tmp_path))
    assert str(bad) in str(err.value) and "truncated" in str(err.value)
    assert "snnkit datasets download nmnist" in str(err.value)


def test_nmnist_event_outside_the_sensor(tmp_path, tonic):
    bad = _two_nmnist_files(tmp_path)
    write_nmnist(tmp_path, "test", 1, 0, Camera(np.array([40]), np.array([1]), [0], [5]))
    with pytest.raises(SnnkitError, match=r"x=40.*outside the 34x34x2 sensor") as err:
        load("nmnist", "test", data_dir=tmp_path, **opts(tmp_path))
    assert str(bad) in str(err.value)


def test_dvsgesture_wrong_layout(tmp_path, tonic):
    ev = Camera(np.array([1]), np.array([2]), np.array([1]), np.array([3]))
    path = write_dvsgesture(tmp_path, "test", 24, "led", 0, ev)
    np.save(path, np.zeros((5, 3), dtype=np.int64))  # three columns instead of x, y, p, t
    with pytest.raises(SnnkitError) as err:
        load("dvsgesture", "test", data_dir=tmp_path, **opts(tmp_path))
    assert str(path) in str(err.value) and "DVSGesture format" in str(err.value)


def _good_shd(root: Path) -> Path:
    make_hsd(root, "shd", {"train": 6, "test": 3})
    return root / "SHD" / "shd_test.h5"


def test_hsd_file_without_a_required_dataset(tmp_path, tonic):
    import h5py

    path = _good_shd(tmp_path)
    with h5py.File(path, "a") as f:
        del f["extra/speaker"]
    with pytest.raises(SnnkitError, match="it has no extra/speaker") as err:
        load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    assert str(path) in str(err.value)


def test_hsd_truncated_file(tmp_path, tonic):
    path = _good_shd(tmp_path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SnnkitError, match="cannot read .*shd_test.h5"):
        load("shd", "test", data_dir=tmp_path, **opts(tmp_path))


def test_hsd_mismatched_lengths_and_units(tmp_path, tonic):
    import h5py

    path = _good_shd(tmp_path)
    with h5py.File(path, "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.zeros(4, dtype=np.uint16))
    with pytest.raises(SnnkitError, match="4 labels but"):
        load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    write_hsd(
        path, [np.array([0.1])] * 2, [np.array([5]), np.array([700])], [0, 1], ["a", "b"], [1, 1]
    )
    with pytest.raises(SnnkitError, match="recording 1 of .* x=700.*outside the 700x1x1 sensor"):
        load("shd", "test", data_dir=tmp_path, **opts(tmp_path))


def test_a_failed_build_leaves_no_cache_entry(tmp_path, tonic):
    path = _good_shd(tmp_path)
    write_hsd(
        path, [np.array([0.1])] * 2, [np.array([5]), np.array([700])], [0, 1], ["a", "b"], [1, 1]
    )
    with pytest.raises(SnnkitError):
        load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "option", "match"),
    [
        ("nmnist", {"shift": 3}, "shift does not apply"),
        ("shd", {"denoise": 5.0}, "denoise does not apply"),
        ("shd", {"validation_user": 1}, "validation_user does not apply"),
        ("shd", {"validation": 1.5}, r"validation must be a number in \[0, 1\)"),
        ("shd", {"validation": "official"}, "no published validation set"),
        ("shd", {"delay_line": 3}, "needs delay_ms"),
        ("shd", {"blend": 2.0}, "blend must be"),
        ("shd", {"downsample": 0}, "downsample must be an integer >= 1"),
        ("shd", {"duration": -1.0}, "duration must be a positive number"),
        (
            "shd",
            {"validation_speaker": 99},
            "no speaker 99 in the training set; its speakers are 1, 2, 3, 4",
        ),
    ],
)
def test_bad_options_are_one_line(data, tmp_path, name, option, match):
    root, _ = data
    with pytest.raises(SnnkitError, match=match) as err:
        load(name, "validation", data_dir=root, **opts(tmp_path), **option)
    assert "\n" not in str(err.value)


# -- preprocessing against brute-force references ------------------------------------------------


def _denoise_reference(x, y, t, filter_time):
    keep = []
    for i in range(len(t)):
        keep.append(
            any(
                max(abs(x[j] - x[i]), abs(y[j] - y[i])) == 1 and t[i] - filter_time < t[j] <= t[i]
                for j in range(len(t))
            )
        )
    return np.array(keep, dtype=bool)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_denoise_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    n = 300
    x, y = rng.integers(0, 6, n), rng.integers(0, 5, n)
    t = np.sort(rng.integers(0, 2000, n))
    keep = pre.denoise(x, y, t, 40, 6, 5)
    np.testing.assert_array_equal(keep, _denoise_reference(x, y, t, 40))
    assert 0 < keep.sum() < n  # the case is not trivial
    # float times agree with integer ones
    np.testing.assert_array_equal(pre.denoise(x, y, t / 8.0, 40 / 8.0, 6, 5), keep)


def test_denoise_drops_isolated_and_same_pixel_events():
    x = np.array([0, 0, 5, 6, 9])
    y = np.array([0, 0, 5, 5, 9])
    t = np.array([0, 1, 10, 11, 12])
    # (0,0) twice: same pixel, no support; (5,5)->(6,5) neighbours: the later is kept, and
    # the earlier too (its neighbour fires at t=11, not in (10-f, 10]) -> only the later.
    np.testing.assert_array_equal(
        pre.denoise(x, y, t, 5, 10, 10), [False, False, False, True, False]
    )


def test_downsample_and_flatten():
    x, size = pre.downsample(np.array([0, 3, 4, 33]), 34, 4)
    assert x.tolist() == [0, 0, 1, 8] and size == 9
    assert pre.flatten([1], [2], [1], 5, 3).tolist() == [(1 * 3 + 2) * 5 + 1]


def test_crop_is_half_open():
    assert pre.crop(np.array([-1.0, 0.0, 9.99, 10.0]), 10.0).tolist() == [False, True, True, False]


def test_delay_line_copies_and_drops_late_events():
    t, ch, s = pre.delay_line(
        np.array([1.0, 5.0]), np.array([2, 0]), np.array([0, 1]), 3, 3, 4.0, 10.0
    )
    got = sorted(zip(t.tolist(), ch.tolist(), s.tolist(), strict=True))
    assert got == [(1.0, 2, 0), (5.0, 0, 1), (5.0, 5, 0), (9.0, 3, 1), (9.0, 8, 0)]


def test_shift_moves_each_recording_by_one_amount():
    rng = np.random.default_rng(0)
    ch = np.tile(np.arange(10), 4)
    sample = np.repeat(np.arange(4), 10)
    keep, moved = pre.shift(ch, sample, 4, 10, 3, rng)
    for b in range(4):
        d = moved[sample == b] - ch[sample == b]
        assert len(set(d.tolist())) == 1 and abs(d[0]) <= 3
        inside = keep[sample == b]
        np.testing.assert_array_equal(inside, (moved[sample == b] >= 0) & (moved[sample == b] < 10))


def test_blend_aligns_centres_of_mass():
    rng = np.random.default_rng(0)
    a = (np.array([10.0, 20.0, 30.0]), np.array([100, 110, 120]))
    b = (np.array([50.0, 60.0, 70.0]), np.array([300, 310, 320]))
    # all of a: a moved to the common centre (time 40, channel 210)
    t, ch = pre.blend(a, b, 700, 1000.0, rng, p_first=1.0)
    np.testing.assert_allclose(t, [30.0, 40.0, 50.0])
    np.testing.assert_array_equal(ch, [200, 210, 220])
    t, ch = pre.blend(a, b, 700, 1000.0, rng, p_first=0.0)
    np.testing.assert_allclose(t, [30.0, 40.0, 50.0])
    np.testing.assert_array_equal(ch, [200, 210, 220])
    t, ch = pre.blend(a, b, 700, 1000.0, np.random.default_rng(1))
    assert np.all(np.diff(t) >= 0) and 0 < len(t) <= 6
    assert set(ch.tolist()) <= {200, 210, 220}


def test_bin_batch_equals_events_to_raster():
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 50, 200).astype(np.float32)
    t[:5] = [0.0, 2.0, 4.0, 49.999, 10.0]  # bin edges
    ch, s = rng.integers(0, 7, 200), rng.integers(0, 3, 200)
    got = pre.bin_batch(t, ch, s, 3, 7, 2.0, 25)
    rows = [[sorted(t[(s == b) & (ch == n)].tolist()) for n in range(7)] for b in range(3)]
    ref = Events.from_lists(rows, 50.0, dtype=torch.float32).to_raster(2.0)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    with pytest.raises(SnnkitError, match="never dropped silently"):
        pre.bin_batch(t, ch, s, 3, 7, 2.0, 10)


def test_steps_option_fixes_the_number_of_bins(data, tmp_path):
    root, _ = data
    ds = load("shd", "test", data_dir=root, steps=40, **opts(tmp_path))
    r = ds.raster(1.0)  # the run's dt does not change the bins
    assert tuple(r.shape) == (40, len(ds), 700)
    torch.testing.assert_close(r[:, [0]], ds.events[[0]].to_raster(25.0, dtype=torch.float32))


def test_transforms_change_the_events(data, tmp_path):
    root, _ = data
    full = load("nmnist", "test", data_dir=root, **opts(tmp_path))
    short = load("nmnist", "test", data_dir=root, duration=100.0, **opts(tmp_path))
    merged = load(
        "nmnist", "test", data_dir=root, merge_polarity=True, downsample=2, **opts(tmp_path)
    )
    clean = load("nmnist", "test", data_dir=root, denoise=20.0, **opts(tmp_path))
    t, ch = recording_ms(full, 0)
    np.testing.assert_allclose(recording_ms(short, 0)[0], t[t < 100.0])
    assert merged.sensor_size == (17, 17, 1) and merged.num_inputs == 289
    x, y = ch % 34, (ch // 34) % 34
    np.testing.assert_array_equal(recording_ms(merged, 0)[1], (y // 2) * 17 + x // 2)
    assert len(recording_ms(clean, 0)[0]) < len(t)
    first = load("nmnist", "test", data_dir=root, first_saccade_only=True, **opts(tmp_path))
    np.testing.assert_allclose(recording_ms(first, 0)[0], t[t < 100.0])  # tonic's option
    assert len({d.store.path for d in (full, short, merged, clean, first)}) == 5


# -- delay line and augmentations in the dataset ---------------------------------------------------


def test_delay_line_grows_the_input(data, tmp_path):
    root, _ = data
    plain = load("shd", "test", data_dir=root, **opts(tmp_path))
    delayed = load("shd", "test", data_dir=root, delay_line=3, delay_ms=100.0, **opts(tmp_path))
    assert delayed.num_inputs == 3 * 700 and delayed.store.path == plain.store.path
    x, y = plain.raster(10.0)[:, [1]], delayed.raster(10.0)[:, [1]]
    torch.testing.assert_close(y[:, :, :700], x)
    torch.testing.assert_close(y[10:, :, 700:1400], x[:-10])  # copy 1: 100 ms later
    assert int(y[:, :, 1400:].sum()) == int(x[:-20].sum())  # copy 2, late spikes fall out


def test_augmentations_apply_to_training_batches_only(data, tmp_path):
    root, _ = data
    kw = {"data_dir": root, "shift": 40, "blend": 0.5, "seed": 3, **opts(tmp_path)}
    train = load("shd", "train", **kw)
    val = load("shd", "validation", **kw)
    plain = load("shd", "train", data_dir=root, seed=3, **opts(tmp_path))
    assert train.augment is not None and val.augment is None
    idx = torch.arange(8)
    a, b = train.raster(10.0)[:, idx], train.raster(10.0)[:, idx]
    torch.testing.assert_close(a, b)  # deterministic per batch (resumable runs)
    assert not torch.equal(a, plain.raster(10.0)[:, idx])
    assert not torch.equal(a, train.raster(10.0)[:, torch.arange(1, 9)][:, :])
    # event methods see the same augmented batches (the spike times of the raster's counts)
    torch.testing.assert_close(a, train.events[idx].to_raster(10.0, dtype=torch.float32))
    assert not torch.equal(train.events[idx].times, plain.events[idx].times)
    torch.testing.assert_close(
        train.events_of(idx, augment=False).times, plain.events[idx].times, rtol=0, atol=0
    )
    # dense() and the other splits never augment
    torch.testing.assert_close(train.raster(10.0).dense(), plain.raster(10.0).dense())
    torch.testing.assert_close(
        val.raster(10.0)[:, [0]], val.events[[0]].to_raster(10.0, dtype=torch.float32)
    )


def _shifted(x: torch.Tensor, s: int) -> torch.Tensor:
    """``x`` [T, N] with every channel moved by ``s`` (what falls off the edge is lost)."""
    out = torch.zeros_like(x)
    n = x.shape[1]
    if s >= 0:
        out[:, s:] = x[:, : n - s]
    else:
        out[:, : n + s] = x[:, -s:]
    return out


def test_shift_moves_whole_training_recordings(data, tmp_path):
    root, _ = data
    train = load("shd", "train", data_dir=root, shift=40, seed=5, **opts(tmp_path))
    plain = load("shd", "train", data_dir=root, seed=5, **opts(tmp_path))
    idx = torch.arange(6)
    got, ref = train.raster(10.0)[:, idx], plain.raster(10.0)[:, idx]
    amounts = []
    for b in range(6):
        match = [s for s in range(-40, 41) if torch.equal(got[:, b], _shifted(ref[:, b], s))]
        assert match, f"recording {b} is not a channel shift of the original"
        amounts.append(match[0])
    assert len(set(amounts)) > 1  # drawn per recording


def test_blend_mixes_recordings_of_the_same_class(data, tmp_path):
    root, _ = data
    train = load("shd", "train", data_dir=root, blend=1.0, seed=5, **opts(tmp_path))
    plain = load("shd", "train", data_dir=root, seed=5, **opts(tmp_path))
    idx = torch.arange(len(train))
    got, ref = train.raster(10.0)[:, idx], plain.raster(10.0)[:, idx]
    changed = [b for b in range(len(train)) if not torch.equal(got[:, b], ref[:, b])]
    assert len(changed) > len(train) // 2
    # each blend keeps about half of two recordings of the same class: its spikes lie in
    # the band of units that class uses in the fixture (40*c + 10 +- 8, then re-centred)
    for b in changed:
        units = got[:, b].sum(0).nonzero().flatten()
        c = int(train.labels[b])
        assert units.min() >= 40 * c + 10 - 16 and units.max() <= 40 * c + 10 + 16


# -- splits ------------------------------------------------------------------------------------


def test_validation_fraction_partitions_the_training_set(data, tmp_path):
    root, _ = data
    train = load("shd", "train", data_dir=root, validation=0.25, **opts(tmp_path))
    val = load("shd", "validation", data_dir=root, validation=0.25, **opts(tmp_path))
    assert len(val) == 6 and len(train) == 18
    assert set(train.index) | set(val.index) == set(range(24))
    assert not set(train.index) & set(val.index)
    other = load("shd", "validation", data_dir=root, validation=0.25, seed=1, **opts(tmp_path))
    assert set(other.index) != set(val.index)


def test_leave_one_speaker_out(data, tmp_path):
    root, written = data
    kw = {"data_dir": root, "validation_speaker": 2, **opts(tmp_path)}
    train, val = load("shd", "train", **kw), load("shd", "validation", **kw)
    speakers = written["shd"]["train"]["speakers"]
    assert (val.groups == 2).all() and len(val) == (speakers == 2).sum()
    assert (train.groups != 2).all() and len(train) + len(val) == 24


def test_dvsgesture_leave_one_user_out(data, tmp_path):
    root, _ = data
    kw = {"data_dir": root, "validation_user": 3, **opts(tmp_path)}
    assert set(load("dvsgesture", "validation", **kw).groups.tolist()) == {3}
    assert 3 not in load("dvsgesture", "train", **kw).groups.tolist()


def test_ssc_uses_its_published_validation_set(data, tmp_path):
    root, written = data
    val = load("ssc", "validation", data_dir=root, **opts(tmp_path))
    train = load("ssc", "train", data_dir=root, **opts(tmp_path))
    assert len(val) == 6 and len(train) == 12
    assert val.store.meta["source_split"] == "valid"
    carved = load("ssc", "validation", data_dir=root, validation=0.5, **opts(tmp_path))
    assert carved.store.meta["source_split"] == "train" and len(carved) == 6


# -- the cache --------------------------------------------------------------------------------------


def test_cache_key_covers_the_transform_chain_and_the_files(tmp_path, tonic):
    make_hsd(tmp_path, "shd", {"train": 6, "test": 3})
    a = load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    meta = json.loads((a.store.path / "meta.json").read_text())
    assert meta["transforms"][0] == ["read", {"tonic": "SHD"}]
    assert ["crop", {"duration_ms": 1000.0}] in meta["transforms"]
    b = load("shd", "test", data_dir=tmp_path, downsample=2, **opts(tmp_path))
    assert b.store.path != a.store.path and b.num_inputs == 350
    # new files under the same name: a new entry, never the stale one
    make_hsd(tmp_path, "shd", {"train": 6, "test": 5}, seed=9)
    c = load("shd", "test", data_dir=tmp_path, **opts(tmp_path))
    assert c.store.path != a.store.path and len(c) == 5


def test_corrupt_cache_entry_is_rebuilt(data, tmp_path):
    root, _ = data
    a = load("shd", "test", data_dir=root, **opts(tmp_path))
    expected = a.raster(10.0).dense()
    path = a.store.path
    del a
    good = (path / "times.f32").read_bytes()
    for torn in (good[:12], good + b"\0" * 8):  # cut short, or longer than offsets say
        (path / "times.f32").write_bytes(torn)
        b = load("shd", "test", data_dir=root, **opts(tmp_path))
        assert b.store.path == path
        torch.testing.assert_close(b.raster(10.0).dense(), expected)
        assert (path / "times.f32").stat().st_size == len(good)  # rebuilt, not patched over
        del b


# -- CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    import snnkit.cli as cli
    import snnkit.registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SNNKIT_PLUGINS", raising=False)
    monkeypatch.delenv("SNNKIT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250))
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli.app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return run


def _row(output: str, name: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == name:
            return cells[1:-1]
    raise AssertionError(f"no row {name!r} in\n{output}")


def test_cli_lists_status_present_missing_cached(tmp_path, invoke, tonic):
    root = tmp_path / "d"
    make_hsd(root, "shd", {"train": 6, "test": 3})
    make_hsd(root, "ssc", {"train": 3})
    result = invoke("datasets", "--data-dir", root)
    assert result.exit_code == 0, result.output
    assert _row(result.stdout, "shd")[1:6] == ["tonic", "20", "700", "1000", "present"]
    assert _row(result.stdout, "ssc")[5] == "partial (no valid, test)"
    assert _row(result.stdout, "nmnist")[5] == "missing"
    assert _row(result.stdout, "yinyang")[5] == "ready"
    load("shd", "test", data_dir=root)
    result = invoke("datasets", "--data-dir", root)
    assert _row(result.stdout, "shd")[5] == "present, cached (1)"


def test_cli_download_is_explicit_and_fails_loudly_offline(tmp_path, invoke, tonic):
    result = invoke("datasets", "download", "shd", "--data-dir", tmp_path / "new" / "data")
    assert result.exit_code == 1  # a failed job, not a mistake in the options
    message = result.stderr.strip()
    assert "\n" not in message and message.startswith("failed: downloading shd (train)")
    assert NETWORK_BLOCKED in message
    assert not (tmp_path / "new").exists()  # the folders it created are gone again
    result = invoke("datasets", "download", "yinyang")
    assert result.exit_code == 2 and "nothing to download" in result.stderr


def test_cli_run_shd_end_to_end(data, tmp_path, invoke, monkeypatch):
    root, _ = data
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    result = invoke(
        "run", "--dataset", "shd", "--data-dir", root, "--grad", "bptt", "--epochs", "1",
        "--hidden", "8", "--batch-size", "8", "--no-progress", "--json", tmp_path / "r.json",
        "--out", tmp_path / "ckpt", "--db", tmp_path / "r.db",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["dataset"] == "shd" and summary["epochs"] == 1
    assert summary["config"]["data_dir"] == str(root)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # SNNKIT_DATA stands in for --data-dir; a missing dataset is one line, exit 2
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path / "empty"))
    result = invoke("run", "--dataset", "shd", "--epochs", "1", "--no-progress")
    assert result.exit_code == 2
    assert "snnkit datasets download shd" in result.stderr and "\n" not in result.stderr.strip()


@pytest.mark.parametrize(
    ("name", "duration", "readout_inputs"),
    [("nmnist", "30", 64 * 6 * 6), ("dvsgesture", "50", 64 * 4 * 4)],
)
def test_cli_run_camera_recipe_end_to_end(data, tmp_path, invoke, monkeypatch, name, duration,
                                          readout_inputs):  # fmt: skip
    """`snnkit run --dataset nmnist|dvsgesture` trains the convolutional recipe on the files
    (shortened recordings keep it to seconds; everything else is the recipe's)."""
    from snnkit.arch import canonical
    from snnkit.data.neuromorphic import NEUROMORPHIC_RECIPES

    root, _ = data
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    result = invoke(
        "run", "--dataset", name, "--data-dir", root, "--epochs", "1", "--data-opt",
        f"duration={duration}", "--no-progress", "--json", tmp_path / "r.json",
        "--out", tmp_path / "ckpt", "--db", tmp_path / "r.db",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    recipe, config = NEUROMORPHIC_RECIPES[name], summary["config"]
    assert config["arch"] == canonical(recipe["arch"]) and config["hidden"] is None
    for key in ("dt", "lr", "batch_size", "schedule", "loss", "layer_options"):
        assert config[key] == recipe[key], key
    assert config["neuron_options"] == recipe["neuron_options"]["lif"]
    assert config["dataset_options"] == {**recipe.get("dataset_options", {}), "duration": 50.0
                                         if name == "dvsgesture" else 30.0}  # fmt: skip
    assert summary["epochs"] == 1 and 0.0 <= summary["test_accuracy"] <= 1.0
    state = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=False)["model"]
    convs = [v for v in state.values() if v.ndim == 4]
    assert len(convs) == recipe["arch"].count("c") and convs[0].shape[1] == 2  # p, camera
    readout = [v for k, v in state.items() if k.endswith("synapse.weight")][-1]
    assert readout.shape[1] == readout_inputs  # the input size the recipe's layers expect


def test_camera_recipes_fall_back_to_mlps_where_asked(monkeypatch):
    """--hidden replaces the recipe's convolutions; event methods get a dense net."""
    from snnkit.registry import get_registry
    from snnkit.train import RunConfig, resolve

    config = resolve(RunConfig(dataset="nmnist", grad="exodus", hidden="64"))
    assert config.arch is None and config.hidden == "64"
    if "eventprop" in get_registry().names("gradient"):
        config = resolve(RunConfig(dataset="dvsgesture", grad="eventprop"))
        assert config.arch is None and config.hidden == "256"
        assert config.neuron_options.get("tau_syn") == 5.0 and config.layer_options == {}


def test_trainer_reads_neuromorphic_batches(data, tmp_path, monkeypatch):
    from snnkit.train import RunConfig, Trainer

    root, _ = data
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    config = RunConfig(
        dataset="shd", grad="bptt", hidden="8", epochs=1, batch_size=4, data_dir=str(root),
        dataset_options={"delay_line": 2, "delay_ms": 50.0},
    )  # fmt: skip
    trainer = Trainer(config)
    x, y = trainer.batch("train", torch.tensor([0, 3]))
    # the recipe's dt (1 ms, the paper's), the delay line given here (2 copies, not the recipe's 10)
    assert x.shape == (1000, 2, 1400) and x.dtype == torch.float32 and y.shape == (2,)
    assert trainer.model is not None
    m = trainer.train_epoch(1)
    assert np.isfinite(m.train_loss)


def test_event_methods_get_spike_times_per_batch(data, tmp_path, monkeypatch):
    from snnkit.registry import get_registry
    from snnkit.train import RunConfig, Trainer

    if "eventprop" not in get_registry().names("gradient"):
        pytest.skip("the eventprop plugin is not installed")
    root, _ = data
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    trainer = Trainer(
        RunConfig(dataset="shd", grad="eventprop", hidden="4", epochs=1, data_dir=str(root))
    )
    assert trainer.config.loss == "sum_exp"  # the recipe's choice for event methods
    x, y = trainer.batch("validation", torch.tensor([0]))
    ds = trainer.data["validation"]
    # the recipe's 10-copy delay line: 7000 inputs
    assert isinstance(x, Events) and x.times.shape[:2] == (1, 7000) and x.duration == 1000.0
    torch.testing.assert_close(x.to_raster(10.0), ds.raster(10.0)[:, [0]])


def test_data_dir_is_ignored_by_generated_datasets(monkeypatch, tmp_path):
    """--data-dir (or SNNKIT_DATA) is ignored by generated datasets."""
    from snnkit.train import RunConfig, Trainer

    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    trainer = Trainer(
        RunConfig(dataset="yinyang", grad="bptt", hidden="4", epochs=1, data_dir=str(tmp_path),
                  dataset_options={"size": 8})
    )  # fmt: skip
    assert len(trainer.data["train"]) == 8
    assert os.environ["SNNKIT_DATA"] == str(tmp_path)


@pytest.mark.parametrize(
    ("grad", "loss"), [("eventprop", "sum_exp"), ("exodus", "ce_sum_exp"), ("bptt", "ce_sum_exp")]
)
@pytest.mark.parametrize(("name", "classes"), [("shd", 20), ("ssc", 35)])
def test_shd_ssc_recipe_is_the_loss_shaping_papers_for_every_method(grad, loss, name, classes):
    """The same network, data pipeline and time step for EventProp and the surrogate-gradient
    methods (docs/methods/eventprop.md cites each number)."""
    from snnkit.registry import get_registry
    from snnkit.train import RunConfig, resolve

    if grad not in get_registry().names("gradient"):
        pytest.skip(f"the {grad} plugin is not installed")
    config = resolve(RunConfig(dataset=name, grad=grad))
    assert config.arch == f"256r-{classes}" and config.dt == 1.0 and config.loss == loss
    assert (config.batch_size, config.lr, config.schedule, config.epochs) == (32, 2e-4, "none", 50)
    assert config.dataset_options == {
        "duration": 1000.0, "delay_line": 10, "delay_ms": 30.0, "shift": 40, "blend": 0.5,
    }  # fmt: skip
    assert config.init_rate == 10.0 and config.readout_tau == 20.0
    assert config.neuron_options == {"tau_mem": 20.0, "tau_syn": 5.0}
    events = {"max_spikes": 750, "weight_mean": 0.3, "weight_std": 0.1}
    if grad == "eventprop":  # the paper's 1 ms grid (the plugin's defaults for SHD and SSC)
        events |= {"mode": "grid", "dt": 1.0, "max_spikes": 1000}
        events |= {"reg_strength": 1e-6, "reg_target": 14.0}  # and the paper's regulariser
    assert config.layer_options == (events if grad == "eventprop" else {})


def test_a_time_that_rounds_up_to_the_duration_in_float32_stays_inside():
    """Augmented or delayed times are float64 below the duration; one within float32's
    spacing of it must not become the duration (Events would refuse it)."""
    from snnkit.data.event_dataset import _to_events

    times = np.array([999.99998, 10.0])
    events = _to_events(times, np.array([0, 1]), np.array([0, 0]), 1, 2, 1000.0, torch.float32)
    got = events.times[torch.isfinite(events.times)]
    assert float(got.max()) < 1000.0 and torch.float32 == events.times.dtype
    assert float(torch.tensor(999.99998, dtype=torch.float32)) == 1000.0  # the case is real


def test_a_time_that_rounds_up_to_the_window_end_in_float32_is_binned_inside():
    """The raster twin of the case above (an SHD run with --grad exodus stopped on it in
    epoch 3): a float64 time within float32's spacing below the end goes to the last bin."""
    times = np.array([999.99998, 10.0])
    raster = pre.bin_batch(times, np.array([0, 1]), np.array([0, 0]), 1, 2, 1.0, 1000)
    assert float(raster[999, 0, 0]) == 1.0 and float(raster.sum()) == 2.0
    with pytest.raises(SnnkitError, match="falls into bin 1000"):
        pre.bin_batch(np.array([1000.0]), np.array([0]), np.array([0]), 1, 2, 1.0, 1000)


def test_delay_line_events_are_the_delayed_copies_in_place():
    """``_to_events`` writes the delay line's copies into their rows without sorting them:
    the same block as delaying first (preprocessing.delay_line) and sorting everything."""
    from snnkit.data.event_dataset import _to_events

    rng = np.random.default_rng(3)
    n = 400
    times = rng.uniform(0.0, 100.0, n).round(1)  # ties within a row included
    channels, sample = rng.integers(0, 6, n), rng.integers(0, 3, n)
    direct = _to_events(times, channels, sample, 3, 6, 100.0, torch.float64, copies=4, delay=30.0)
    t, ch, s = pre.delay_line(times, channels, sample, 6, 4, 30.0, 100.0)
    assert len(t) < 4 * n  # late copies fall out
    generic = _to_events(t, ch, s, 3, 24, 100.0, torch.float64)
    K = generic.max_spikes
    assert direct.times.shape == (3, 24, direct.max_spikes) and direct.max_spikes >= K
    torch.testing.assert_close(direct.times[..., :K], generic.times, rtol=0, atol=0)
    assert bool(torch.isinf(direct.times[..., K:]).all())
