"""The leaderboard report: metrics per entry, the self-contained HTML page (checked in a real
headless Chromium where one is installed), the PNG for any number of tasks."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import snnkit.registry
from snnkit import cli, leaderboard
from snnkit.builtin import YINYANG_RECIPE
from snnkit.results import ResultsStore

CONFIG = {
    "dataset": "yinyang",
    "neuron": "lif",
    "epochs": 3,
    "lr": 3e-3,
    "hidden": "200",
    "neuron_options": {"tau_mem": 20.0, "tau_syn": 5.0},
    "layer_options": {"weight_gain": 4.0},
}


def _run(store, method, seed, acc, *, seconds=(1.0, 2.0, 3.0), cpu=None, **config):
    config = {**CONFIG, "grad": method, "seed": seed, "device": "cpu", **config}
    run_id = store.start_run(
        method=method, neuron="lif", dataset=config["dataset"], seed=seed, config=config,
        versions={}, device="cpu",
    )  # fmt: skip
    for epoch, s in enumerate(seconds, 1):
        row = {"epoch": epoch, "seconds": s, "validation_accuracy": acc - 0.1 / epoch}
        if cpu is not None:
            row["cpu_seconds"] = cpu[epoch - 1]
        store.log_epoch(run_id, epoch, row)
    summary = {
        "test_accuracy_at_best_validation": acc + 0.01,
        "spike_rate": [0.1, 0.3],
        "dead_fraction": [0.5, 0.1],
    }
    store.finish_run(
        run_id, test_accuracy=acc, seconds_per_epoch=statistics.mean(seconds),
        peak_memory_mb=100.0 + seed, summary=summary,
    )  # fmt: skip


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.db"
    with ResultsStore(path) as store:
        for seed, acc in enumerate((0.96, 0.97, 0.98)):
            _run(store, "exodus", seed, acc)
        _run(store, "exodus", 0, 0.96, seconds=(9.0, 9.0, 9.0))  # seed 0 again: averaged
        _run(store, "bptt", 0, 0.95, seconds=(5.0, 6.0, 7.0), lr=1e-2)
        _run(store, "snntorch", 0, 0.90, dataset="randman", seconds=(0.5,))
    return path


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, [str(a) for a in args])


def _board(db):
    with ResultsStore(db) as store:
        return leaderboard.entries(store)


def test_metrics_per_entry_over_seeds(db):
    exodus = next(e for e in _board(db) if e.method == "exodus")
    assert exodus.seeds == [0, 1, 2] and exodus.duplicates == 1
    assert exodus.accuracy_mean == pytest.approx(0.97)
    assert exodus.best_validation_accuracy.mean == pytest.approx(0.98)
    # the median over the epochs of one run per seed, the latest (seed 0's: 9, 9, 9 s)
    assert exodus.seconds_per_epoch == 3.0
    assert exodus.peak_memory_mb == 102.0
    assert exodus.spike_rate.mean == pytest.approx(0.2)
    assert exodus.dead_fraction.mean == pytest.approx(0.3)
    epoch, mean, low, high = exodus.curve()[-1]
    assert (epoch, low, high) == (3, pytest.approx(0.96 - 0.1 / 3), pytest.approx(0.98 - 0.1 / 3))
    assert mean == pytest.approx(0.97 - 0.1 / 3)
    row = leaderboard.cells(exodus)
    assert "3 (0,1,2) +1 repeat(s) averaged" in row and "98.00 ± 1.00 %" in row


def test_cpu_seconds_put_on_the_time_axis_only_when_every_entry_has_them(tmp_path):
    from snnkit.report import pareto_front, time_axis

    with ResultsStore(tmp_path / "r.db") as store:
        # wall clock says b is faster (a ran on a loaded machine); CPU time says a is
        _run(store, "a", 0, 0.97, seconds=(9.0, 9.0), cpu=(1.0, 1.0))
        _run(store, "b", 0, 0.96, seconds=(2.0, 2.0), cpu=(3.0, 3.0))
        board = leaderboard.entries(store)
        a = next(e for e in board if e.method == "a")
        assert (a.seconds_per_epoch, a.cpu_seconds_per_epoch) == (9.0, 1.0)
        assert "1.00" in leaderboard.cells(a) and a.row()["cpu_seconds_per_epoch_median"] == 1.0
        what, _ = time_axis(board)
        assert what == "CPU seconds per epoch"
        assert [e.method for e in pareto_front(board)] == ["a"]  # a dominates b on CPU time
        _run(store, "c", 0, 0.95, seconds=(1.0, 1.0))  # recorded before CPU time was
        board = leaderboard.entries(store)
        assert next(e for e in board if e.method == "c").cpu_seconds_per_epoch is None
        what, _ = time_axis(board)  # one entry without: all on the wall clock, never mixed
        assert what == "seconds per epoch"
        assert [e.method for e in pareto_front(board)] == ["c", "b", "a"]


def test_settings_as_a_diff_against_the_recipe():
    options = {**CONFIG, "lr": 1e-2, "layer_options": {"weight_gain": 2.0}, "surrogate": "atan"}
    assert leaderboard.recipe_diff(options, YINYANG_RECIPE) == (
        "epochs=3, layer_options.weight_gain=2, lr=0.01, surrogate=atan"
    )
    events = {**options, "lr": 5e-3}
    diff = leaderboard.recipe_diff(events, YINYANG_RECIPE, events=True)
    assert "lr=" not in diff and "layer_options.weight_mean=None" in diff


def test_gradient_error_from_a_stored_conformance_run():
    payload = {
        "results": [
            {"method": "a", "dtype": "float64", "status": "passed", "max_rel_err": 3e-15},
            {"method": "a", "dtype": "float64", "status": "passed", "max_rel_err": 1e-14},
            {"method": "a", "dtype": "float64", "status": "skipped", "max_rel_err": None},
            {"method": "a", "dtype": "float32", "status": "failed", "max_rel_err": 1.0},
            {"method": "b", "dtype": "float64", "status": "failed", "max_rel_err": 0.2},
            {"method": "b", "dtype": "float64", "status": "passed", "max_rel_err": 1e-15},
        ]
    }
    assert leaderboard.conformance_errors(payload) == {
        "a": "1e-14 (2/2)",
        "b": "fails 1/2 (worst 2e-01)",
    }


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.refs, self.stack, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        if tag not in ("meta", "br", "img", "path", "use", "rect", "circle", "line", "stop"):
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        if tag in ("meta", "br", "img", "path", "use", "rect", "circle", "line", "stop"):
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


@pytest.fixture
def report(db, tmp_path, invoke):
    pytest.importorskip("matplotlib")
    conformance = tmp_path / "conformance.json"
    conformance.write_text(
        json.dumps(
            {
                "results": [
                    {
                        "method": "exodus",
                        "dtype": "float64",
                        "status": "passed",
                        "max_rel_err": 2e-15,
                    }
                ]
            }
        )
    )
    out = tmp_path / "report.html"
    result = invoke(
        "leaderboard", "report", str(out), "--db", str(db), "--conformance", str(conformance)
    )
    assert result.exit_code == 0, result.output
    return out


def test_report_is_one_self_contained_page(report):
    text = report.read_text()
    page = _Page()
    page.feed(text)
    assert not page.errors and not page.stack, (page.errors, page.stack)
    assert "script" not in page.tags  # nothing runs
    external = [r for r in page.refs if not r.startswith("#")]
    assert not external  # nothing fetched at view time
    assert page.tags.count("section") == 2 and page.tags.count("svg") == 2
    assert page.tags.count("table") == 2 and page.tags.count("tr") == 2 + 3
    assert "2e-15 (1/1)" in text and "not checked" in text  # exodus checked, bptt not
    assert "lr=0.01" in text  # bptt's setting against the recipe
    assert "accuracy vs time per epoch" in text and "learning curves" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--window-size=1300,2400", f"--screenshot={shot}", report.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    from matplotlib.image import imread

    image = imread(shot)
    assert image.shape[0] >= 2000 and image.shape[1] >= 1200
    assert image[..., :3].std() > 0.05  # not a blank page
    keep = Path(__file__).resolve().parent.parent / "runs" / "report-screenshot.png"
    if keep.parent.is_dir():  # for a person to look at (runs/ is not committed)
        shutil.copy(shot, keep)


@pytest.mark.parametrize("n_tasks", [1, 3])
def test_png_for_any_number_of_tasks(tmp_path, n_tasks):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    with ResultsStore(tmp_path / "r.db") as store:
        for k in range(n_tasks):
            for m, acc in (("exodus", 0.97), ("ser_exponential_long_method_name", 0.9)):
                for seed in range(2):
                    _run(store, m, seed, acc - 0.01 * seed, dataset=f"task{k}")
        board = leaderboard.entries(store)
    out = tmp_path / "b.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Tight layout not applied"
        leaderboard.write(board, out)
    height = imread(out).shape[0]
    assert height > 400 * n_tasks  # one row of plots per task, never squeezed
