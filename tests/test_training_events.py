"""`snnkit run` with event methods: spike-time inputs, event recipes, stats, resumption."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.losses import first_spike
from snnkit.registry import get_registry
from snnkit.train import RunConfig, Trainer, run

# exact-autograd is the slow reference (Python loops over events): keep it tiny
EVENTS = {
    "grad": "exact-autograd",
    "dataset_options": {"size": 24},
    "hidden": "6",
    "batch_size": 8,
    "schedule": "none",
    # 6 hidden neurons drive the output less than the recipe's 200: a larger mean keeps it firing
    "layer_options": {"weight_mean": 1.5},
}


def test_event_recipe_replaces_the_raster_one():
    t = Trainer(RunConfig(epochs=1, **EVENTS))
    cfg = t.config
    # Wunderlich & Pehle's setup: first-spike loss with the early-label term, their latency
    # code and per-layer initialisation (the user's weight_mean wins over the recipe's)
    assert (cfg.readout, cfg.loss, cfg.dtype) == ("spiking", "first_spike_exp", "float64")
    assert t.model.output.weight.dtype == torch.float64  # the recipe's dtype is the run's
    assert Trainer(RunConfig(epochs=1, dtype="float32", **EVENTS)).config.dtype == "float32"
    assert Trainer(RunConfig(epochs=1, dataset_options={"size": 24})).config.dtype == "float32"
    assert cfg.layer_options == {  # the raster recipe's weight_gain is gone
        "weight_mean": 1.5,
        "weight_std": 0.2747,
        "output_weight_mean": 2.0713,
        "output_weight_std": 0.2227,
    }
    assert cfg.dataset_options == {
        "size": 24,
        "t_min": 10.0,
        "t_max": 40.0,
        "bias_time": 20.0,
        "duration": 60.0,
    }
    x, _ = t.batch("train", torch.arange(24))
    assert float(x.times[:, 4].min()) == float(x.times[:, 4].max()) == 20.0  # the bias spike
    assert float(x.times[:, :4].min()) >= 10.0 and float(x.times[:, :4].max()) <= 40.0
    assert t.model.output_kind == "spikes"
    # raster methods keep the raster recipe
    raster = RunConfig(grad="bptt").resolved(dict(get_registry().dataset("yinyang").defaults))
    assert (raster.readout, raster.loss, raster.layer_options) == (
        "li",
        "ce_max",
        {"weight_gain": 4.0},
    )


def test_event_batches_are_spike_times_and_stats_count_spikes():
    t = Trainer(RunConfig(epochs=1, **EVENTS))
    x, y = t.batch("train", torch.arange(8))
    assert x.times.shape == (8, 5, 1) and y.shape == (8,)
    m = t.train_epoch(1)
    assert math.isfinite(m.train_loss) and math.isfinite(m.validation_loss)
    (rate,), (dead,) = m.spike_rate, m.dead_fraction
    assert rate > 0 and 0.0 <= dead < 1.0  # the initialisation makes hidden neurons fire


def test_training_moves_the_weights_and_lowers_the_loss():
    t = Trainer(RunConfig(epochs=1, lr=1e-2, **EVENTS))
    before = [p.detach().clone() for p in t.model.parameters()]
    first = t.train_epoch(1).train_loss
    last = [t.train_epoch(e).train_loss for e in range(2, 6)][-1]
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.parameters(), strict=True))
    assert last < first


def test_interrupted_event_run_resumes_exactly(tmp_path):
    full = run(RunConfig(epochs=2, **EVENTS), db=None, out=tmp_path / "a", progress=False)
    run(RunConfig(epochs=1, **EVENTS), db=None, out=tmp_path / "b", progress=False)
    resumed = run(
        RunConfig(epochs=2, **EVENTS), db=None, out=tmp_path / "b", resume=True, progress=False
    )
    assert [e.train_loss for e in resumed.epochs] == [e.train_loss for e in full.epochs]


def test_raster_loss_on_an_event_network_is_refused():
    with pytest.raises(SnnkitError, match="reads trace but this network outputs spike_times"):
        Trainer(RunConfig(loss="ce_max", epochs=1, **EVENTS))


def test_silent_output_gives_zero_gradient_not_a_crash():
    """No output spike anywhere: the first-spike loss is constant, the step is skipped."""
    opts = {**EVENTS, "layer_options": {"weight_mean": -5.0, "weight_std": 0.0}}
    t = Trainer(RunConfig(epochs=1, **opts))
    before = [p.detach().clone() for p in t.model.parameters()]
    m = t.train_epoch(1)
    assert m.dead_fraction == [1.0]
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters(), strict=True))


def test_first_spike_handles_no_spike_slots():
    assert torch.isinf(first_spike(torch.empty(2, 3, 0))).all()
    times = torch.tensor([[[1.0, 2.0], [math.inf, math.inf]]])
    assert first_spike(times).tolist() == [[1.0, math.inf]]
