"""Training loop: learning, recorded status, checkpoints; the slow acceptance run on Yin-Yang."""

from __future__ import annotations

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.results import ResultsStore
from snnkit.train import RunConfig, Trainer, run

TINY = {"dataset_options": {"size": 96}, "hidden": "16", "batch_size": 32, "schedule": "none"}


def test_randman_learns_above_chance():
    """A short run on an easy Randman task beats chance clearly (3 classes: chance 33 %)."""
    cfg = RunConfig(
        dataset="randman",
        epochs=12,
        hidden="32",
        schedule="none",
        dataset_options={"classes": 3, "units": 20, "samples_per_class": 60},
    )
    t = Trainer(cfg)
    for epoch in range(1, cfg.epochs + 1):
        m = t.train_epoch(epoch)
    assert m.train_accuracy > 0.8 and m.validation_accuracy > 0.7
    assert len(m.spike_rate) == len(m.dead_fraction) == 1
    assert 0.0 <= m.dead_fraction[0] <= 1.0


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    a = run(RunConfig(epochs=1, seed=3, **TINY), db=None, out=tmp_path, progress=False)
    b = Trainer(RunConfig(epochs=1, seed=3, **TINY)).train_epoch(1)
    c = Trainer(RunConfig(epochs=1, seed=4, **TINY)).train_epoch(1)
    assert a.final.train_loss == b.train_loss
    assert a.final.train_loss != c.train_loss


def test_failed_run_is_recorded_as_failed_not_completed(tmp_path):
    db = tmp_path / "r.db"

    def explode(metrics):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run(
            RunConfig(epochs=2, **TINY), db=db, out=tmp_path / "c", progress=False, on_epoch=explode
        )
    with ResultsStore(db) as store:
        assert store.runs() == []
        (record,) = store.runs(status=None)
        assert record.status == "failed" and record.test_accuracy is None
        assert len(record.epochs) == 1  # the finished epoch is kept


def test_a_spiking_readout_needs_a_loss_for_spikes():
    with pytest.raises(SnnkitError, match="reads trace but this network outputs spikes"):
        Trainer(RunConfig(readout="spiking", loss="ce_max", epochs=1, **TINY))


def test_loss_must_match_network_output():
    with pytest.raises(SnnkitError, match="spike_count_mse"):
        Trainer(RunConfig(epochs=1, loss="spike_count_mse", **TINY))


def test_checkpoint_with_other_settings_is_refused(tmp_path):
    run(RunConfig(epochs=1, **TINY), db=None, out=tmp_path, progress=False)
    with pytest.raises(SnnkitError, match="different settings"):
        run(RunConfig(epochs=2, lr=0.1, **TINY), db=None, out=tmp_path, progress=False, resume=True)


@pytest.mark.slow
@pytest.mark.parametrize("grad", ["bptt", "exodus"])
def test_default_yinyang_recipe_reaches_95_percent(tmp_path, grad):
    """Acceptance: the default `snnkit run` recipe (Yin-Yang, 30 epochs) reaches >= 95 % test accuracy."""
    torch.set_num_threads(2)
    result = run(RunConfig(grad=grad), db=tmp_path / "r.db", out=tmp_path / "c", progress=False)
    assert result.final.test_accuracy >= 0.95
