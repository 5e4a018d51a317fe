"""Training loop: learning, recorded status, checkpoints; the slow acceptance run on Yin-Yang."""

from __future__ import annotations

import pytest
import torch

from snnkit.errors import SnnkitError
from snnkit.registry import get_registry
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


def test_epochs_record_the_process_cpu_time_of_training(tmp_path):
    """CPU seconds are recorded per epoch and in the summary and the store (the board's
    load-independent time); one thread busy for the whole pass: CPU time near the wall time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        db = tmp_path / "r.db"
        result = run(RunConfig(epochs=2, **TINY), db=db, out=tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    for e in result.epochs:
        assert 0.0 < e.cpu_seconds <= 1.2 * e.seconds + 0.05
    assert result.summary()["cpu_seconds_per_epoch"] == pytest.approx(
        sum(e.cpu_seconds for e in result.epochs) / 2
    )
    with ResultsStore(db) as store:
        (record,) = store.runs()
        assert [e["cpu_seconds"] for e in record.epochs] == [e.cpu_seconds for e in result.epochs]


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


# --- trained thresholds: their own Adam group, their statistics, resume -----------------------

TINY_LR = 2e-3
THRESH = {**TINY, "grad": "bptt", "lr": TINY_LR, "layer_options": {"train_threshold": True}}


def test_thresholds_get_their_own_parameter_group():
    t = Trainer(RunConfig(epochs=1, lr_threshold=0.05, **THRESH))
    main, thresholds = t.optimizer.param_groups
    assert main["lr"] == TINY_LR and thresholds["lr"] == 0.05
    names = {id(p): n for n, p in t.model.named_parameters()}
    assert [names[id(p)] for p in thresholds["params"]] == ["0.neurons.params.threshold"]
    assert all(not names[id(p)].endswith("threshold") for p in main["params"])
    # the rate defaults to --lr; without trained thresholds there is one group
    assert Trainer(RunConfig(epochs=1, **THRESH)).optimizer.param_groups[1]["lr"] == TINY_LR
    assert len(Trainer(RunConfig(epochs=1, **TINY)).optimizer.param_groups) == 1


def test_lr_threshold_must_be_positive():
    with pytest.raises(SnnkitError, match="--lr-threshold must be a positive number"):
        Trainer(RunConfig(epochs=1, lr_threshold=0.0, **THRESH))


def test_threshold_statistics_per_layer_and_epoch():
    m = Trainer(RunConfig(epochs=1, lr_threshold=0.05, **THRESH)).train_epoch(1)
    (stats,) = m.threshold
    assert stats["min"] <= stats["mean"] <= stats["max"] and stats["std"] > 0  # it trained
    fixed = Trainer(RunConfig(epochs=1, **TINY)).train_epoch(1).threshold
    assert fixed == [{"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}]


def test_resume_with_a_threshold_group_matches_an_uninterrupted_run(tmp_path):
    cfg = {"lr_threshold": 0.05, "seed": 2, **THRESH}
    whole = run(RunConfig(epochs=2, **cfg), db=None, out=tmp_path / "a", progress=False)
    run(RunConfig(epochs=1, **cfg), db=None, out=tmp_path / "b", progress=False)
    resumed = run(
        RunConfig(epochs=2, **cfg), db=None, out=tmp_path / "b", progress=False, resume=True
    )
    for a, b in zip(whole.epochs, resumed.epochs, strict=True):
        for key in ("train_loss", "threshold", "dead_fraction"):
            assert getattr(a, key) == getattr(b, key)
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [TINY_LR, 0.05]
    with pytest.raises(SnnkitError, match="different settings.*lr_threshold"):
        run(RunConfig(epochs=3, **{**cfg, "lr_threshold": 0.01}), db=None, out=tmp_path / "b",
            progress=False, resume=True)  # fmt: skip


def test_method_run_defaults_fill_unset_options_only():
    from snnkit.train import with_method_defaults

    method = type("M", (), {"run_defaults": {"surrogate": "atan", "layer_options": {"a": 1}}})()
    merged = with_method_defaults({"layer_options": {"b": 2}, "lr": 0.1}, method)
    assert merged == {"layer_options": {"b": 2, "a": 1}, "lr": 0.1, "surrogate": "atan"}
    cfg = RunConfig(surrogate="gaussian", layer_options={"a": 5}).resolved(merged)
    assert cfg.surrogate == "gaussian" and cfg.layer_options == {"a": 5, "b": 2}
    assert with_method_defaults({"lr": 0.1}, get_registry().gradient("bptt")) == {"lr": 0.1}


def test_method_run_defaults_for_one_dataset_merge_into_its_recipe():
    from snnkit.train import with_method_defaults

    recipe = {"lr": 0.1, "events": {"loss": "sum_exp", "layer_options": {"max_spikes": 750}}}
    own = {"events": {"layer_options": {"mode": "grid", "max_spikes": 1000}}}
    method = type("M", (), {"run_defaults": {"surrogate": "atan", "datasets": {"shd": own}}})()
    merged = with_method_defaults(recipe, method, "shd")
    assert merged == {
        "lr": 0.1,
        "surrogate": "atan",
        "events": {"loss": "sum_exp", "layer_options": {"max_spikes": 1000, "mode": "grid"}},
    }
    assert with_method_defaults(recipe, method, "yinyang") == {**recipe, "surrogate": "atan"}
    cfg = RunConfig(layer_options={"mode": "exact"}).resolved(merged, "events")
    assert cfg.layer_options == {"mode": "exact", "max_spikes": 1000}  # the user's wins


def test_evaluation_chunks_are_large_only_for_small_inputs():
    """Up to 256 samples per evaluation forward, unless their inputs pass 256 MB: an SHD
    raster (1000 steps x 7000 inputs) is 28 MB a recording, so evaluation runs in batches."""
    trainer = Trainer(RunConfig(**TINY))
    n = len(trainer.data["test"])
    assert trainer._eval_chunk("test") == 256
    trainer.inputs["test"] = torch.zeros(1).expand(1000, n, 7000)  # its shape, no memory
    assert trainer._eval_chunk("test") == trainer.config.batch_size


def test_step_schedule_multiplies_the_rate_every_few_epochs():
    trainer = Trainer(RunConfig(epochs=7, lr=0.1, **{**TINY, "schedule": "step:0.5:3"}))
    rates = []
    for _ in range(7):
        rates.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()  # no gradients: changes nothing, keeps the order torch expects
        trainer.scheduler.step()
    assert rates == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])


@pytest.mark.parametrize("bad", ["step", "step:0:5", "step:1.5:5", "step:0.9:0", "step:x:y", "exp"])
def test_bad_schedules_are_one_line(bad):
    with pytest.raises(SnnkitError, match="--schedule") as info:
        Trainer(RunConfig(epochs=1, **{**TINY, "schedule": bad}))
    assert "\n" not in str(info.value)


def test_clip_grad_bounds_the_norm_the_optimizer_sees(monkeypatch):
    trainer = Trainer(RunConfig(epochs=1, lr=0.1, clip_grad=1e-3, **TINY))
    norms = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))))
        return step(*args, **kwargs)

    monkeypatch.setattr(trainer.optimizer, "step", recording_step)
    trainer.train_epoch(1)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-6)
    with pytest.raises(SnnkitError, match="--clip-grad must be a positive number"):
        Trainer(RunConfig(epochs=1, clip_grad=0.0, **TINY))


def test_a_non_finite_gradient_skips_the_step_and_is_counted():
    """A batch whose gradient is NaN (finite loss: d sqrt(u)/du at u = 0 times 0) is not
    applied; the other batches are, and the weights stay finite."""
    trainer = Trainer(RunConfig(epochs=1, lr=0.01, **TINY))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, calls = trainer.loss, []

    class Poisoned:
        def __getattr__(self, name):
            return getattr(loss, name)

        def __call__(self, output, target):
            calls.append(1)
            value = loss(output, target)
            if len(calls) == 1:
                w = trainer.model.layers[0].weight
                value = value + torch.sqrt(((w - w.detach()) ** 2).sum())
            return value

    trainer.loss = Poisoned()
    metrics = trainer.train_epoch(1)
    assert metrics.skipped_steps == 1  # of the 3 training batches (the loss also evaluates)
    after = list(trainer.model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_summary_reports_the_test_accuracy_at_the_best_validation_epoch():
    from snnkit.train import EpochMetrics, RunResult

    def epoch(k, val, test):
        return EpochMetrics(k, 0.0, 0.0, 0.0, val, test, 1.0, [], [], 1e-3)

    history = [epoch(1, 0.80, 0.79), epoch(2, 0.95, 0.93), epoch(3, 0.95, 0.99), epoch(4, 0.9, 0.9)]
    summary = RunResult(RunConfig(), history, 0.0).summary()
    assert summary["test_accuracy"] == 0.9  # the last epoch
    assert (summary["best_validation_epoch"], summary["test_accuracy_at_best_validation"]) == (
        2,
        0.93,
    )  # selected by validation (the first of equals), never by test


def test_step_hooks_see_every_batch_after_its_step_and_can_change_the_network():
    """A hook runs after each batch's optimiser step with that batch; what it does to the
    weights is what the next batch trains from."""
    trainer = Trainer(RunConfig(epochs=1, lr=0.01, **TINY))
    seen, largest = [], []

    def hook(t, step):
        assert t is trainer
        seen.append((step.epoch, step.batch, len(step.index), step.stepped, len(step.hidden)))
        weight = t.model.layers[0].weight
        largest.append(weight.abs().max().item())
        with torch.no_grad():
            weight.zero_()

    trainer.step_hooks.append(hook)
    trainer.train_epoch(1)
    n = len(trainer.data["train"])
    sizes = [len(b) for b in torch.arange(n).split(trainer.config.batch_size)]
    assert seen == [(1, k, size, True, 1) for k, size in enumerate(sizes)]
    # from the second batch on, the weights are one Adam step (about lr) away from zero;
    # the last batch's hook came after its step
    assert largest[0] > 0.1 and all(0 < w <= 4 * 0.01 for w in largest[1:]), largest
    assert torch.count_nonzero(trainer.model.layers[0].weight) == 0


def test_a_resolved_run_is_trained_as_it_is():
    """``resolve_run`` resolves once; the Trainer takes a ResolvedRun's objects as they are."""
    from snnkit.train import resolve_run

    resolved = resolve_run(RunConfig(epochs=1, **TINY))
    assert resolve_run(resolved) is resolved
    trainer = Trainer(resolved)
    assert (trainer.config, trainer.method, trainer.neuron) == (
        resolved.config,
        resolved.method,
        resolved.neuron,
    )
    assert trainer.method is resolved.method and trainer.neuron is resolved.neuron
