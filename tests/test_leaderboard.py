"""Leaderboards: grouping by setting, ranking, renderers, the resumable grid, the CLI."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import snnkit.registry
from snnkit import cli, leaderboard
from snnkit.errors import SnnkitError
from snnkit.results import ResultsStore
from snnkit.train import ResolvedRun, RunConfig, resolve

BASE = {"dataset": "yinyang", "neuron": "lif", "epochs": 30, "lr": 1e-3, "hidden": "200"}


def _record(store, method, seed, accuracy, *, status="completed", **config):
    config = {**BASE, "grad": method, "seed": seed, "device": "cpu", **config}
    run_id = store.start_run(
        method=method,
        neuron=config["neuron"],
        dataset=config["dataset"],
        seed=seed,
        config=config,
        versions={},
        device=config["device"],
    )
    store.finish_run(run_id, status=status, test_accuracy=accuracy, seconds_per_epoch=2.0)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "results.db"
    with ResultsStore(path) as store:
        for seed, acc in enumerate((0.970, 0.975, 0.980)):
            _record(store, "exodus", seed, acc)
        _record(store, "exodus", 3, 0.5, status="failed")  # never ranked
        _record(store, "bptt", 0, 0.960, device="cuda")  # the device is not a setting
        _record(store, "bptt", 1, 0.970)
        _record(store, "bptt", 0, 0.800, epochs=1)  # a smoke test: its own entry
        _record(store, "bptt", 0, 0.700, dataset="randman")
    return path


def test_runs_group_by_setting_and_rank_by_mean_accuracy(db):
    with ResultsStore(db) as store:
        board = leaderboard.entries(store)
    yinyang = [e for e in board if e.dataset == "yinyang"]
    assert [(e.rank, e.method, e.seeds) for e in yinyang] == [
        (1, "exodus", [0, 1, 2]),
        (2, "bptt", [0, 1]),
        (3, "bptt", [0]),
    ]
    assert yinyang[0].accuracy_mean == pytest.approx(0.975)
    assert yinyang[0].accuracy_std == pytest.approx(statistics.stdev([0.970, 0.975, 0.980]))
    assert yinyang[1].accuracy_mean == pytest.approx(0.965)
    # each entry names only what sets it apart within its task
    assert [e.label for e in yinyang] == ["epochs=30", "epochs=30", "epochs=1"]
    (randman,) = [e for e in board if e.dataset == "randman"]
    assert randman.rank == 1 and randman.label == ""


def test_filters_and_min_seeds(db):
    with ResultsStore(db) as store:
        assert {e.method for e in leaderboard.entries(store, methods=["bptt"])} == {"bptt"}
        assert {e.dataset for e in leaderboard.entries(store, dataset="randman")} == {"randman"}
        assert [e.method for e in leaderboard.entries(store, min_seeds=2)] == ["exodus", "bptt"]


def test_renderers(db):
    with ResultsStore(db) as store:
        board = leaderboard.entries(store, dataset="yinyang")
    markdown = leaderboard.render(board, "markdown").splitlines()
    assert markdown[0].startswith("| # | task | method")
    assert (
        "| 1 | yinyang | exodus | lif | epochs=30 | 3 (0,1,2) | 97.50 ± 0.50 % | — | 2.00 | — "
        "| — | not checked | — | — |" in markdown  # no CPU time recorded: —
    )
    rows = list(csv.DictReader(io.StringIO(leaderboard.render(board, "csv"))))
    assert [r["method"] for r in rows] == ["exodus", "bptt", "bptt"]
    assert float(rows[0]["test_accuracy_mean"]) == pytest.approx(0.975)
    assert rows[0]["seeds"] == "0 1 2"
    data = json.loads(leaderboard.render(board, "json"))
    assert data[2]["setting"] == "epochs=1" and data[2]["runs"] == 1
    page = leaderboard.render(board, "html")
    assert page.count("<tr>") == 4 and "97.50 ± 0.50 %" in page
    with pytest.raises(SnnkitError, match="unknown leaderboard format"):
        leaderboard.render(board, "xlsx")


def test_html_escapes_what_it_shows(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        _record(store, "bptt", 0, 0.9, loss="<b>x</b>")
        _record(store, "bptt", 0, 0.8)
        board = leaderboard.entries(store)
    page = leaderboard.render(board, "html")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_write_picks_the_format_from_the_suffix_and_never_leaves_partial_files(db, tmp_path):
    with ResultsStore(db) as store:
        board = leaderboard.entries(store)
    out = tmp_path / "board.md"
    assert leaderboard.write(board, out) == "markdown"
    assert out.read_text() == leaderboard.render(board, "markdown")
    assert leaderboard.write(board, tmp_path / "board.txt", "csv") == "csv"
    with pytest.raises(SnnkitError, match="cannot tell the format"):
        leaderboard.write(board, tmp_path / "board.txt")
    with pytest.raises(SnnkitError, match="does not exist"):
        leaderboard.write(board, tmp_path / "missing" / "board.md")
    with pytest.raises(SnnkitError, match="no completed runs"):
        leaderboard.write([], tmp_path / "empty.md")
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "empty.md").exists()


def test_png_plot(db, tmp_path):
    pytest.importorskip("matplotlib")
    with ResultsStore(db) as store:
        board = leaderboard.entries(store)
    out = tmp_path / "board.png"
    leaderboard.write(board, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_says_how_to_get_it(db, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with ResultsStore(db) as store:
        board = leaderboard.entries(store)
    with pytest.raises(SnnkitError, match=r"pip install 'snnkit\[plot\]'"):
        leaderboard.write(board, tmp_path / "board.png")
    assert not list(tmp_path.glob("board.png*"))


def test_a_resolved_config_and_its_stored_record_share_a_setting(tmp_path):
    config = resolve(RunConfig(grad="bptt", seed=3, epochs=2))
    with ResultsStore(tmp_path / "r.db") as store:
        run_id = store.start_run(
            method="bptt",
            neuron="lif",
            dataset="yinyang",
            seed=3,
            config=asdict(config),
            versions={},
            device="cpu",
        )
        stored = store.get(run_id).config
    assert leaderboard.setting_key(stored) == leaderboard.setting_key(asdict(config))
    other = resolve(RunConfig(grad="bptt", seed=3, epochs=3))
    assert leaderboard.setting_key(asdict(other)) != leaderboard.setting_key(asdict(config))
    assert leaderboard.setting_key(asdict(resolve(RunConfig(grad="bptt", seed=4, epochs=2)))) == (
        leaderboard.setting_key(asdict(config))
    )


@pytest.fixture
def fake_training(monkeypatch):
    """``snnkit.train.run`` replaced by one that records a completed run at once."""
    calls = []

    def run(resolved, *, db, out, resume, **_):
        assert isinstance(resolved, ResolvedRun)  # fill resolved it once: run takes it as is
        config = resolved.config
        calls.append((config.grad, config.seed, Path(out), resume))
        with ResultsStore(db) as store:
            run_id = store.start_run(
                method=config.grad,
                neuron=config.neuron,
                dataset=config.dataset,
                seed=config.seed,
                config=asdict(config),
                versions={},
                device=config.device,
            )
            store.finish_run(run_id, test_accuracy=0.9)

    monkeypatch.setattr("snnkit.train.run", run)
    return calls


def test_fill_trains_what_is_missing_and_resumes_interrupted_runs(tmp_path, fake_training):
    db, out = tmp_path / "r.db", tmp_path / "runs"
    grid = [RunConfig(grad=m, seed=s, epochs=1) for m in ("bptt", "exodus") for s in (0, 1)]
    first = leaderboard.fill(grid[:3], db=db, out=out, progress=False)
    assert [status for _, status in first] == ["trained"] * 3
    # the fourth was interrupted earlier: its checkpoint is there
    key = leaderboard.setting_key(asdict(resolve(grid[3])))
    folder = out / f"yinyang-exodus-lif-{key}-seed1"
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"")
    again = leaderboard.fill(grid, db=db, out=out, progress=False)
    assert [status for _, status in again] == ["recorded"] * 3 + ["resumed"]
    assert fake_training[-1] == ("exodus", 1, folder, True)
    assert len(fake_training) == 4  # nothing was trained twice


def test_fill_checks_every_config_before_training_any(tmp_path, fake_training):
    grid = [RunConfig(grad="bptt", epochs=1), RunConfig(grad="no-such-method")]
    with pytest.raises(SnnkitError, match="no-such-method"):
        leaderboard.fill(grid, db=tmp_path / "r.db", out=tmp_path / "runs", progress=False)
    assert fake_training == []


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, [str(a) for a in args])


def test_cli_show_and_export(db, tmp_path, invoke):
    shown = invoke("leaderboard", "show", "--db", db, "--dataset", "yinyang")
    assert shown.exit_code == 0, shown.output
    assert "97.50 ± 0.50 %" in shown.output and "randman" not in shown.output
    exported = invoke("leaderboard", "export", tmp_path / "b.csv", "--db", db, "--grad", "bptt")
    assert exported.exit_code == 0 and "wrote" in exported.output
    assert {r["method"] for r in csv.DictReader(open(tmp_path / "b.csv"))} == {"bptt"}


def test_cli_mistakes_are_one_line(tmp_path, invoke):
    missing = invoke("leaderboard", "show", "--db", tmp_path / "nope.db")
    assert missing.exit_code == 2 and "no results database" in missing.output
    assert not (tmp_path / "nope.db").exists()
    bad = invoke("leaderboard", "run", "--grad", "bptt", "--seeds", "0")
    assert bad.exit_code == 2 and "--seeds must be between 1 and 1000" in bad.output
    both = invoke("leaderboard", "run", "--grad", "bptt", "--seeds", "2", "--seed", "1")
    assert both.exit_code == 2 and "give one" in both.output


def test_cli_run_fills_the_grid_then_shows_it(tmp_path, invoke, fake_training):
    result = invoke(
        "leaderboard",
        "run",
        "--grad",
        "bptt",
        "--grad",
        "exodus",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "4 trained, 0 resumed, 0 already recorded" in result.output
    again = invoke("leaderboard", "run", "--grad", "bptt", "--seeds", "2", "--epochs", "1")
    assert "0 trained, 0 resumed, 2 already recorded" in again.output
    assert "90.00 ± 0.00 %" in again.output
    # --seed trains just that seed (parallel workers each take their own cells)
    one = invoke("leaderboard", "run", "--grad", "bptt", "--seed", "4", "--seed", "1",
                 "--epochs", "1", "--no-progress")  # fmt: skip
    assert "1 trained, 0 resumed, 1 already recorded" in one.output, one.output
    with ResultsStore(tmp_path / "snnkit-results.db") as store:
        assert sorted(r.seed for r in store.runs(method="bptt")) == [0, 1, 4]


def test_a_seed_trained_twice_weighs_once_and_one_seed_has_no_spread(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        for seed, acc in ((0, 0.90), (0, 0.90), (0, 0.90), (1, 0.80)):
            _record(store, "bptt", seed, acc)
        _record(store, "exodus", 0, 0.95)
        board = leaderboard.entries(store)
    bptt, exodus = sorted(board, key=lambda e: e.method)
    assert len(bptt.runs) == 4 and bptt.seeds == [0, 1]
    assert bptt.accuracy_mean == pytest.approx(0.85)  # per run it would be 0.875
    assert bptt.accuracy_std == pytest.approx(statistics.stdev([0.90, 0.80]))
    assert exodus.accuracy_std is None
    assert leaderboard.cells(exodus)[6] == "95.00 ± — %"
    assert json.loads(leaderboard.render(board, "json"))[0]["test_accuracy_std"] is None


def test_cli_board_mistakes_and_empty_stores_agree(db, tmp_path, invoke):
    def one_line(result, code, *words):
        assert result.exit_code == code, result.output
        (line,) = result.stderr.strip().splitlines()
        assert all(w in line for w in words), line

    one_line(invoke("leaderboard", "show", "--db", db, "--min-seeds", "-1"), 2, "--min-seeds")
    one_line(
        invoke("leaderboard", "show", "--db", db, "--dataset", "nosuch"), 2, "nosuch", "yinyang"
    )
    one_line(invoke("leaderboard", "show", "--db", db, "--grad", "nosuch"), 2, "nosuch", "exodus")
    bogus = invoke("leaderboard", "export", tmp_path / "b.md", "--db", db, "--format", "bogus")
    one_line(bogus, 2, "--format 'bogus'", "markdown")
    one_line(invoke("leaderboard", "export", "/proc/x.md", "--db", db), 2, "/proc/x.md")
    empty = tmp_path / "empty.db"
    ResultsStore(empty).close()
    show = invoke("leaderboard", "show", "--db", empty)
    export = invoke("leaderboard", "export", tmp_path / "e.md", "--db", empty)
    one_line(show, 2, "no completed runs")
    one_line(export, 2, "no completed runs")
    assert show.stderr == export.stderr and not (tmp_path / "e.md").exists()


def test_cli_show_tells_running_from_stale_runs(db, invoke):
    with ResultsStore(db) as store:
        store.start_run(  # this process: alive
            method="bptt", neuron="lif", dataset="yinyang", seed=7, config={}, versions={},
            device="cpu",
        )  # fmt: skip
        dead = store.start_run(
            method="bptt", neuron="lif", dataset="yinyang", seed=8, config={}, versions={},
            device="cpu",
        )  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (proc.pid, dead))  # its process died
    conn.commit()
    conn.close()
    shown = invoke("leaderboard", "show", "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "1 run(s) still training" in shown.stdout
    assert f"1 run(s) whose process died (stale, not ranked): {dead}" in shown.stdout
