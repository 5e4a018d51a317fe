"""The ``snnkit`` command line: listings, user mistakes (exit 2, one line), a tiny real run,
checkpoints, resumption and its determinism."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import typer
from fixtures.distributions import (
    BROKEN_IMPORT_PLUGIN,
    CLASH_PLUGIN,
    GOOD_PLUGIN,
    plugin_sandbox,
    write_distribution,
)
from fixtures.processes import WIDTH, run_cli
from rich.console import Console
from typer.testing import CliRunner

import snnkit.cli as cli
import snnkit.registry
from snnkit.registry import get_registry
from snnkit.results import ResultsStore
from snnkit.train import RunConfig


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    """Run the CLI in-process in ``tmp_path``, with wide consoles and a fresh registry."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SNNKIT_PLUGINS", raising=False)
    monkeypatch.delenv("SNNKIT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    monkeypatch.setattr(cli, "console", Console(width=WIDTH))
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=WIDTH))
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(cli.app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # an unexpected crash: show its traceback
        return result

    return run


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    with plugin_sandbox(tmp_path, monkeypatch) as box:
        yield box


def rows(output: str, first_cell: str) -> list[list[str]]:
    """The cells of each table row whose first cell is ``first_cell``."""
    found = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first_cell:
            found.append(cells)
    return found


# -- snnkit plugins / datasets ------------------------------------------------------------------


# `snnkit run`'s options that do not choose what is trained: where things are written, how
# the run is shown, how it is launched
RUN_PLUMBING = {"db", "out", "resume", "run_id", "json_file", "progress", "threads", "nproc"}


def test_run_options_are_the_run_config_fields():
    """One declaration of a run's settings: every RunConfig field is an option of `snnkit
    run` with its name (KEY=VALUE dictionaries as --*-opt) and default (None where the
    registry or the recipe chooses), but those only recipes set; every other option is
    plumbing."""
    command = typer.main.get_command(cli.app).commands["run"]
    params = {p.name: p for p in command.params if p.name != "ctx"}
    option_of = {field: name for name, field in cli._OPTION_FIELDS.items()}
    settings = set()
    for f in dataclasses.fields(RunConfig):
        name = option_of.get(f.name, f.name)
        if f.name in cli.RECIPE_ONLY_FIELDS:
            assert name not in params, f"{f.name} is declared recipe-only but is an option"
            continue
        assert name in params, f"RunConfig.{f.name} has no `snnkit run` option --{name}"
        settings.add(name)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        given = params[name].default
        if name in cli._OPTION_FIELDS:
            assert (given, default) == (None, {}), f.name
        elif f.name == "grad":
            assert given is None  # $SNNKIT_DEFAULT_GRAD, else exodus, else bptt
        else:
            assert given == default, f"--{name} defaults to {given!r}, RunConfig to {default!r}"
    assert set(params) - settings == RUN_PLUMBING


def test_leaderboard_run_options_are_run_config_fields_or_grid_plumbing():
    """`snnkit leaderboard run`'s settings are RunConfig fields with RunConfig's defaults
    (the grid's --grad is a list; its seeds come from --seeds or --seed)."""
    group = typer.main.get_command(cli.app).commands["leaderboard"]
    params = {p.name: p for p in group.commands["run"].params if p.name != "ctx"}
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    option_of = {field: name for name, field in cli._OPTION_FIELDS.items()}
    settings = {option_of.get(name, name) for name in fields} & set(params) - {"grad"}
    for name in settings:
        f = fields[cli._OPTION_FIELDS.get(name, name)]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        expected = None if name in cli._OPTION_FIELDS else default
        assert params[name].default == expected, name
    plumbing = {"seeds", "only_seed", "db", "out", "progress", "threads", "executor"}
    plumbing |= {"jobs", "address", "cpus_per_task", "gpus_per_task"}
    assert set(params) - settings == {"grad"} | plumbing


def test_plugins_lists_the_builtins(invoke):
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    out = result.stdout
    (plugin,) = rows(out, "snnkit")  # the plugins table: the built-in plugin
    assert plugin[1:3] == ["snnkit", snnkit.__version__]
    assert plugin[3].startswith("neurons 5, surrogates 6, gradients 3, losses")
    assert plugin[4] == "ok"
    for name, kind in [
        ("bptt", "gradient"),
        ("bptt-detached-reset", "gradient"),
        ("lif", "neuron"),
        ("if", "neuron"),
        ("li", "neuron"),
        ("exponential", "surrogate"),
        ("fast_sigmoid", "surrogate"),
        ("atan", "surrogate"),
        ("ce_max", "loss"),
        ("yinyang", "dataset"),
        ("randman", "dataset"),
    ]:
        (cells,) = rows(out, name)
        assert cells[1:3] == [kind, "snnkit"], cells
    bptt = rows(out, "bptt")[0]
    assert bptt[3:5] == ["2", "raster"]  # the method's own version, its representation
    assert bptt[5].split(", ") == ["lif", "if", "alif", "rf"]  # li is a readout: not supported
    assert "failed" not in out and "clash" not in out
    assert result.stderr == ""


def test_plugins_reports_a_broken_plugin_and_still_exits_0(invoke, sandbox):
    sandbox.install(
        "snnkit-fixture-plugin", "0.3", GOOD_PLUGIN, {"fixture": "snnkit_fixture_plugin"}
    )
    sandbox.install(
        "snnkit-fixture-broken", "0.1", BROKEN_IMPORT_PLUGIN, {"broken": "snnkit_fixture_broken"}
    )
    sandbox.install("snnkit-fixture-clash", "0.2", CLASH_PLUGIN, {"clash": "snnkit_fixture_clash"})
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    out = result.stdout
    failed = [line for line in out.splitlines() if line.startswith("failed")]
    assert len(failed) == 1
    assert "'broken'" in failed[0] and "snnkit-fixture-broken" in failed[0]
    assert "RuntimeError: boom" in failed[0]
    # the plugins table: every plugin, its distribution, version, hooks and status
    (broken,) = rows(out, "broken")
    assert broken[1:3] == ["snnkit-fixture-broken", "0.1"] and broken[4] == "failed"
    (fixture,) = rows(out, "fixture")
    assert fixture[1:4] == ["snnkit-fixture-plugin", "0.3", "surrogates 1, gradients 1"]
    assert fixture[4] == "ok"
    # the registrations table
    (method,) = rows(out, "fixture-bptt")
    assert method[1:6] == ["gradient", "fixture", "0.3", "raster", "lif, if"]
    assert rows(out, "fixture_box")[0][1:3] == ["surrogate", "fixture"]
    # the clash: both rows marked in the table, and explained below it
    assert [r[1:3] for r in rows(out, "bptt (clash)")] == [
        ["gradient", "snnkit"],
        ["gradient", "clash"],
    ]
    assert rows(out, "bptt") == []
    clash_lines = [line for line in out.splitlines() if line.startswith("clash")]
    assert clash_lines == ["clash gradient 'bptt' registered by snnkit, snnkit-fixture-clash"]
    assert rows(out, "lif")[0][2] == "snnkit"


def test_plugins_in_a_fresh_process_finds_installed_entry_points(tmp_path):
    site = tmp_path / "site"
    write_distribution(
        site, "snnkit-fixture-plugin", "0.3", GOOD_PLUGIN, {"fixture": "snnkit_fixture_plugin"}
    )
    write_distribution(
        site,
        "snnkit-fixture-broken",
        "0.1",
        BROKEN_IMPORT_PLUGIN,
        {"broken": "snnkit_fixture_broken"},
    )
    proc = run_cli("plugins", cwd=tmp_path, extra_path=site)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert rows(proc.stdout, "fixture")[0][1] == "snnkit-fixture-plugin"
    assert rows(proc.stdout, "fixture-bptt")[0][2] == "fixture"
    assert rows(proc.stdout, "bptt")[0][2] == "snnkit"
    assert "boom" in proc.stdout


def test_datasets_lists_builtins_as_ready(invoke):
    result = invoke("datasets")
    assert result.exit_code == 0, result.output
    (yinyang,) = rows(result.stdout, "yinyang")
    assert yinyang[1:6] == ["built-in", "3", "5", "60", "ready"]
    (randman,) = rows(result.stdout, "randman")
    assert randman[1] == "built-in" and randman[5] == "ready"


def test_datasets_marks_a_plugin_dataset_without_its_package_missing(invoke, sandbox):
    source = """
        from snnkit import hookimpl
        from snnkit.data import DatasetSpec

        @hookimpl
        def snnkit_register_datasets(register):
            register(DatasetSpec(
                name="fixture_ds", summary="needs a package that is not installed",
                classes=("a", "b"), num_inputs=7, duration=10.0, load=None,
                source="snnkit_no_such_package",
            ))
    """
    sandbox.install("snnkit-fixture-ds", "0.1", source, {"ds": "snnkit_fixture_ds"})
    result = invoke("datasets")
    assert result.exit_code == 0, result.output
    assert rows(result.stdout, "fixture_ds")[0][1:6] == [
        "snnkit_no_such_package",
        "2",
        "7",
        "10",
        "missing",
    ]
    assert rows(result.stdout, "yinyang")[0][5] == "ready"


# -- user mistakes: exit 2, one line, no traceback ----------------------------------------------

MISTAKES = [
    (["--grad", "nope"], ["unknown gradient 'nope'", "bptt", "bptt-detached-reset"]),
    (["--grad", "bptt", "--neuron", "li"], ["does not support", "li"]),
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--dtype", "float16"], ["--dtype", "float16", "float32", "float64"]),
    (["--neuron-opt", "tau_mem=-1"], ["tau_mem", "positive"]),
    (["--neuron-opt", "nonsense"], ["nonsense", "KEY=VALUE"]),
    (["--neuron-opt", "bogus=1"], ["no parameter bogus", "tau_mem"]),
    (["--dataset", "nope"], ["unknown dataset 'nope'", "yinyang", "randman"]),
    (["--surrogate", "nope"], ["unknown surrogate 'nope'", "exponential"]),
    (["--loss", "nope"], ["unknown loss 'nope'", "ce_max"]),
    (["--loss", "ttfs_ce"], ["ttfs_ce", "choose a loss"]),
    (["--hidden", "abc"], ["shape", "abc"]),
    (["--schedule", "bogus"], ["--schedule", "cosine"]),
    (["--lr", "0"], ["--lr"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--device", "tpu"], ["--device", "tpu"]),
    (["--data-opt", "size=0"], ["size", "integer"]),
    (["--json", "no/such/dir/out.json"], ["--json", "does not exist"]),
]


@pytest.mark.parametrize(("args", "words"), MISTAKES, ids=lambda v: " ".join(v)[:40])
def test_user_mistakes_exit_2_with_one_line(invoke, tmp_path, args, words):
    db = tmp_path / "r.db"
    result = invoke(
        "run",
        "--epochs",
        "1",
        "--data-opt",
        "size=8",
        "--no-progress",
        "--db",
        db,
        "--out",
        tmp_path / "ckpt",
        *args,
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "ckpt" / "checkpoint.pt").exists()
    if db.exists():  # a usage error is not a run: nothing recorded
        with ResultsStore(db) as store:
            assert store.runs(status=None) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available here")
def test_cuda_without_a_gpu_is_a_user_mistake(invoke, tmp_path):
    result = invoke("run", "--device", "cuda", "--db", tmp_path / "r.db", "--no-progress")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--device cuda" in line and "no CUDA device" in line and "--device cpu" in line


@pytest.mark.parametrize("option", ["--data-opt", "--layer-opt"])
def test_unknown_dataset_or_layer_option_is_a_user_mistake(invoke, tmp_path, option):
    result = invoke(
        "run",
        "--epochs",
        "1",
        "--data-opt",
        "size=8",
        "--no-progress",
        "--db",
        tmp_path / "r.db",
        "--out",
        tmp_path / "ckpt",
        option,
        "bogus=1",
    )
    assert result.exit_code == 2
    assert "bogus" in result.stderr


def test_bad_option_type_is_a_usage_error(invoke):
    result = invoke("run", "--epochs", "abc")
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "--epochs" in result.output


def test_user_mistake_in_a_real_process_prints_one_line_to_stderr(tmp_path):
    proc = run_cli("run", "--grad", "nope", "--no-progress", "--db", "r.db", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: unknown gradient 'nope'; known: bptt, bptt-detached-reset")


# -- a tiny real run, checkpoint, resume ---------------------------------------------------------

TINY = ["--hidden", "8", "--data-opt", "size=64", "--batch-size", "32", "--no-progress"]


def tiny_run(invoke, tmp_path: Path, name: str, *extra: str) -> tuple[object, dict | None]:
    out_json = tmp_path / f"{name}.json"
    out_json.unlink(missing_ok=True)
    result = invoke(
        "run",
        *TINY,
        "--db",
        tmp_path / f"{name}.db",
        "--out",
        tmp_path / name,
        "--json",
        out_json,
        *extra,
    )
    data = json.loads(out_json.read_text()) if out_json.exists() else None
    return result, data


def test_tiny_run_end_to_end(invoke, tmp_path):
    result, data = tiny_run(invoke, tmp_path, "r", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout

    registry = get_registry()
    assert data["method"] == cli.default_method(registry)
    assert data["neuron"] == "lif" and data["dataset"] == "yinyang"
    assert data["seed"] == 0 and type(data["seed"]) is int
    assert data["epochs"] == 1 and type(data["epochs"]) is int
    for key in ("test_accuracy", "train_accuracy", "validation_accuracy"):
        value = data[key]
        assert type(value) is float and 0.0 <= value <= 1.0
        assert (value * 64).is_integer()  # size=64 applies to every split
    assert type(data["seconds_per_epoch"]) is float and data["seconds_per_epoch"] > 0
    assert data["config"]["hidden"] == "8" and data["config"]["batch_size"] == 32
    assert data["config"]["dataset_options"]["size"] == 64
    (epoch,) = data["history"]
    assert epoch["epoch"] == 1
    assert epoch["test_accuracy"] == data["test_accuracy"]
    assert epoch["train_accuracy"] == data["train_accuracy"]

    assert (tmp_path / "r" / "checkpoint.pt").is_file()
    with ResultsStore(tmp_path / "r.db") as store:
        (record,) = store.runs(status=None)
    assert record.status == "completed" and record.id == data["run_id"]
    assert record.test_accuracy == data["test_accuracy"]
    assert record.train_accuracy == data["train_accuracy"]
    assert (record.method, record.neuron, record.dataset, record.seed) == (
        data["method"],
        "lif",
        "yinyang",
        0,
    )
    assert [e["epoch"] for e in record.epochs] == [1]
    assert record.epochs[0]["train_loss"] == epoch["train_loss"]
    assert record.finished is not None


def test_rerun_needs_resume_and_resume_continues_the_same_record(invoke, tmp_path):
    # extending a run is allowed where the schedule does not depend on the epoch count
    first, one = tiny_run(
        invoke, tmp_path, "r", "--grad", "bptt", "--epochs", "1", "--schedule", "none"
    )
    assert first.exit_code == 0, first.output
    checkpoint = tmp_path / "r" / "checkpoint.pt"
    before = checkpoint.read_bytes()

    again, _ = tiny_run(invoke, tmp_path, "r", "--grad", "bptt", "--epochs", "1")
    assert again.exit_code == 2
    (line,) = again.stderr.strip().splitlines()
    assert "exists" in line and "--resume" in line
    assert "Traceback" not in again.output
    assert checkpoint.read_bytes() == before
    with ResultsStore(tmp_path / "r.db") as store:
        assert len(store.runs(status=None)) == 1

    resumed, two = tiny_run(
        invoke, tmp_path, "r", "--grad", "bptt", "--epochs", "2", "--schedule", "none", "--resume"
    )
    assert resumed.exit_code == 0, resumed.output
    assert two["epochs"] == 2
    assert [e["epoch"] for e in two["history"]] == [1, 2]
    assert two["history"][0] == one["history"][0]  # epoch 1 restored, not retrained
    assert two["run_id"] == one["run_id"]
    with ResultsStore(tmp_path / "r.db") as store:
        (record,) = store.runs(status=None)
    assert record.id == one["run_id"] and record.status == "completed"
    assert [e["epoch"] for e in record.epochs] == [1, 2]
    assert record.test_accuracy == two["test_accuracy"]
    assert record.epochs[1]["train_loss"] == two["history"][1]["train_loss"]


def test_resume_with_other_settings_is_refused(invoke, tmp_path):
    first, _ = tiny_run(invoke, tmp_path, "r", "--grad", "bptt", "--epochs", "1")
    assert first.exit_code == 0, first.output
    result = invoke(
        "run",
        "--hidden",
        "16",
        *TINY[2:],
        "--grad",
        "bptt",
        "--epochs",
        "2",
        "--resume",
        "--db",
        tmp_path / "r.db",
        "--out",
        tmp_path / "r",
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "different settings" in line and "hidden" in line


def test_resumed_run_matches_an_uninterrupted_one(invoke, tmp_path):
    common = ["--grad", "bptt", "--schedule", "none", "--seed", "3"]
    whole, straight = tiny_run(invoke, tmp_path, "whole", *common, "--epochs", "2")
    assert whole.exit_code == 0, whole.output
    half, _ = tiny_run(invoke, tmp_path, "split", *common, "--epochs", "1")
    assert half.exit_code == 0, half.output
    rest, resumed = tiny_run(invoke, tmp_path, "split", *common, "--epochs", "2", "--resume")
    assert rest.exit_code == 0, rest.output

    keys = (
        "epoch",
        "train_loss",
        "train_accuracy",
        "validation_loss",
        "validation_accuracy",
        "test_accuracy",
        "spike_rate",
        "dead_fraction",
        "lr",
    )
    assert len(straight["history"]) == len(resumed["history"]) == 2
    for a, b in zip(straight["history"], resumed["history"], strict=True):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    for key in ("test_accuracy", "train_accuracy", "validation_accuracy"):
        assert straight[key] == resumed[key]
    # the two epochs differ (training happened), so the equality above is not vacuous
    assert straight["history"][0]["train_loss"] != straight["history"][1]["train_loss"]


def test_extending_a_cosine_run_does_not_train_at_lr_zero(invoke, tmp_path):
    common = ["--grad", "bptt", "--schedule", "cosine"]
    first, _ = tiny_run(invoke, tmp_path, "r", *common, "--epochs", "1")
    assert first.exit_code == 0, first.output
    result, data = tiny_run(invoke, tmp_path, "r", *common, "--epochs", "2", "--resume")
    # either refuse to change the schedule's length, or continue with a positive rate
    assert result.exit_code == 2 or data["history"][1]["lr"] > 0


def test_bench_command_writes_json_with_the_bptt_baseline(invoke, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke(
        "bench",
        "--grad",
        "bptt-detached-reset",
        "--size",
        "10,2,8",
        "--part",
        "neuron",
        "--repeats",
        "1",
        "--json",
        out,
    )
    assert result.exit_code == 0, result.output
    methods = {r["method"] for r in json.loads(out.read_text())["results"]}
    assert methods == {"bptt", "bptt-detached-reset"}
    bad = invoke("bench", "--size", "10,2")
    assert bad.exit_code == 2 and "T,B,N" in bad.stderr


def test_resume_restores_the_settings_from_the_run_or_the_folder(invoke, tmp_path):
    first, one = tiny_run(invoke, tmp_path, "r", "--grad", "bptt", "--epochs", "1", "--seed", "4",
                          "--schedule", "none")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert f"recorded as run {one['run_id']} in {tmp_path / 'r.db'}" in first.stdout
    db, out = tmp_path / "r.db", tmp_path / "r"
    # by run id: every setting comes back (grad, seed, hidden, data size); more epochs
    by_id = invoke("run", "--resume", "--run-id", one["run_id"], "--db", db, "--epochs", "2",
                   "--no-progress", "--json", tmp_path / "two.json")  # fmt: skip
    assert by_id.exit_code == 0, by_id.output
    two = json.loads((tmp_path / "two.json").read_text())
    assert (two["method"], two["seed"], two["run_id"], two["epochs"]) == (
        "bptt",
        4,
        one["run_id"],
        2,
    )
    assert two["config"] == {**one["config"], "epochs": 2}
    assert two["history"][0] == one["history"][0]
    # by folder, with a setting that differs: refused, naming it
    other = invoke("run", "--resume", "--out", out, "--db", db, "--hidden", "16", "--epochs", "3")
    assert other.exit_code == 2
    (line,) = other.stderr.strip().splitlines()
    assert "different settings (hidden)" in line
    # options repeated the former way, without a checkpoint: never trains from scratch
    missing = invoke("run", "--resume", *TINY, "--grad", "bptt", "--seed", "5", "--db", db)
    assert missing.exit_code == 2
    # (the default folder, keyed by the setting's digest)
    assert re.search(
        r"no checkpoint runs/yinyang-bptt-lif-\w{10}-seed5/checkpoint.pt", missing.stderr
    )
    with ResultsStore(db) as store:
        assert [r.id for r in store.runs(status=None)] == [one["run_id"]]
