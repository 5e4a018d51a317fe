"""Data-driven input weights (``--init-rate``) and the silent-layer warning, on SHD-format
recordings written by ``benchmarks/synthetic_shd.py`` (read by the real tonic loader)."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import pytest

from snnkit.errors import SilentLayerWarning, SnnkitError
from snnkit.weight_init import scale_to_rate

pytest.importorskip("h5py")
pytest.importorskip("tonic")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "synthetic_shd.py"


def _generator():
    spec = importlib.util.spec_from_file_location("synthetic_shd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=[300.0, 8000.0], ids=["sparse", "dense"])
def recordings(request, tmp_path_factory):
    """SHD files of 40 training and 20 test recordings, median ``param`` spikes each."""
    root = tmp_path_factory.mktemp(f"shd-{int(request.param)}")
    stats = _generator().write(root, 40, 20, spikes=request.param)
    return root, request.param, stats


def _trainer(root, grad="eventprop", **changes):
    from snnkit.train import RunConfig, Trainer

    config = RunConfig(
        dataset="shd",
        grad=grad,
        hidden="16",
        epochs=1,
        batch_size=20,
        data_dir=str(root),
        dataset_options={"delay_line": 1, "cache_dir": str(root / "cache")},
        **changes,
    )
    return Trainer(config)


def test_scale_to_rate_brackets_then_bisects():
    calls = []

    def rate(f):  # silent below f = 2, then linear; over the spike bound above f = 64
        calls.append(f)
        if f > 64:
            raise SnnkitError("over max_spikes")
        return max(0.0, 5.0 * (f - 2.0))

    f, r = scale_to_rate(rate, 10.0)
    assert 10 / 1.5 <= r <= 15 and math.isclose(r, rate(f))
    assert calls[:2] == [1.0, 4.0] and len(calls) <= 13
    f, r = scale_to_rate(rate, 200.0)  # reachable only just below the bound
    assert 200 / 1.5 <= r <= 300


def test_scale_to_rate_keeps_the_closest_when_the_target_is_out_of_reach():
    f, r = scale_to_rate(lambda f: min(3.0, f), 10.0, steps=6)
    assert r == 3.0 and f >= 3.0


def test_synthetic_files_have_the_requested_statistics(recordings):
    root, spikes, stats = recordings
    assert stats["train"]["recordings"] == 40
    assert 0.6 < stats["train"]["mean_duration_s"] < 1.0
    assert 0.6 * spikes < stats["train"]["mean_spikes"] < 1.6 * spikes
    got = _generator().stats(root / "SHD" / "shd_train.h5")
    assert math.isclose(got["spikes"]["mean"], stats["train"]["mean_spikes"])


@pytest.mark.slow
@pytest.mark.parametrize("grad", ["eventprop", "exodus"])
def test_init_rate_reaches_the_target_rate(recordings, grad):
    root, _, _ = recordings
    trainer = _trainer(root, grad, init_rate=20.0)
    assert 20 / 1.5 <= trainer.initial_rate <= 30
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentLayerWarning)
        metrics = trainer.train_epoch(1)
    assert metrics.dead_fraction[0] < 1.0


def test_init_rate_starts_from_weights_that_overflow_the_spike_bound(recordings):
    """The unscaled weights make neurons fire past ``max_spikes`` (the SHD recipe's first
    measurement on dense recordings): that counts as too high, it does not stop the run."""
    root, _, _ = recordings
    strong = {"weight_mean": 5.0, "weight_std": 0.5, "max_spikes": 100}
    trainer = _trainer(root, init_rate=10.0, layer_options=strong)
    assert 10 / 1.5 <= trainer.initial_rate <= 15


@pytest.mark.slow
def test_a_silent_hidden_layer_warns_once_after_the_first_epoch(recordings):
    root, spikes, _ = recordings
    trainer = _trainer(root, "eventprop", init_rate=0.0, layer_options={"weight_mean": 0.0,
                       "weight_std": 0.01})  # fmt: skip
    assert trainer.initial_rate is None
    with pytest.warns(
        SilentLayerWarning, match=r"hidden layer 1 fired no spike in epoch 1.*--init-rate"
    ):
        trainer.train_epoch(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentLayerWarning)
        trainer.train_epoch(2)  # only after the first epoch


def test_init_rate_must_be_a_rate():
    from snnkit.train import RunConfig, resolve

    with pytest.raises(SnnkitError, match="--init-rate must be"):
        resolve(RunConfig(grad="bptt", init_rate=-1.0))
