"""A third party's neuron, surrogate and method, pip-installed from docs/neurons.md, checked
by `snnkit conformance --neuron/--surrogate` and its pytest route, with two planted mistakes:
a C++ surrogate body 10 % larger than its torch form, and a neuron step that decays the
adaptation current with the membrane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.cli import cli_invoker
from fixtures.packages import docs_files, installed_packages, write_package
from fixtures.pytest_route import conformance_pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "neurons.md"
PLUGIN = "snnkit-adlif/snnkit_adlif/plugin.py"
BROKEN = {  # variant -> (right, wrong)
    "body": ('return f"{k} / ((T(1)', 'return f"T(1.1) * {k} / ((T(1)'),
    "step": ('v = c["alpha"] * state.v + x - w', 'v = c["alpha"] * (state.v - w) + x'),
}
DISTRIBUTIONS = ["snnkit-adlif", *(f"snnkit-adlif-{v}" for v in BROKEN)]
LIF_VARIANTS = 6  # cases that vary LIF's options: skipped for another kind
SURROGATE_VARIANTS = 3  # cases that vary the surrogate: skipped when one is named


def renamed(text: str, variant: str) -> str:
    """The plugin with every registered name suffixed, so the variants install side by side."""
    text = text.replace('"adlif"', f'"adlif_{variant}"')
    text = text.replace('= "sigmoid"', f'= "sigmoid_{variant}"')
    return text.replace('name = "adlif-unrolled"', f'name = "adlif-unrolled-{variant}"')


def build_packages(root: Path) -> list[Path]:
    files = docs_files(PAGE, "snnkit-adlif/")
    assert set(files) == {"snnkit-adlif/pyproject.toml", PLUGIN}, "neurons.md lost its plugin"
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "snnkit-adlif/snnkit_adlif/__init__.py").write_text("")
    projects = [root / "snnkit-adlif"]
    for variant, (right, wrong) in BROKEN.items():
        assert right in files[PLUGIN], f"the '{variant}' mistake no longer applies"
        source = renamed(files[PLUGIN], variant).replace(right, wrong)
        module = f"snnkit_adlif_{variant}"
        projects.append(
            write_package(
                root, f"snnkit-adlif-{variant}", "0.1.0", {"plugin": source},
                {f"adlif-{variant}": f"{module}.plugin"},
            )
        )  # fmt: skip
    return projects


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The plugin and its two broken variants, pip-installed for this module only."""
    with installed_packages(build_packages(tmp_path_factory.mktemp("packages")), DISTRIBUTIONS):
        yield


@pytest.fixture
def invoke(installed, tmp_path, monkeypatch):
    return cli_invoker(monkeypatch, tmp_path, width=160)


def by_method(path: Path) -> dict[str, dict[str, str]]:
    data = json.loads(path.read_text())
    out: dict[str, dict[str, str]] = {}
    for r in data["results"]:
        out.setdefault(r["method"], {})[r["case"]] = r["status"]
    return out


@pytest.mark.slow
def test_a_plugin_neuron_passes_with_bptt_and_its_method_exodus_refuses_it(invoke, tmp_path):
    out = tmp_path / "c.json"
    result = invoke(
        "conformance", "--grad", "bptt", "--grad", "exodus", "--grad", "adlif-unrolled",
        "--neuron", "adlif", "--surrogate", "sigmoid", "--json", out,
    )  # fmt: skip
    print(result.stdout)  # the report's record of a real run (pytest -s)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        "under test: adlif(dt=1.0, tau_mem=20.0, tau_adapt=100.0, jump=0.5, threshold=1.0), sigmoid(slope=5.0)"
        in lines
    )
    (body,) = [ln for ln in lines if ln.startswith("surrogate sigmoid(slope=5.0): ")]
    assert "C++/CUDA body = torch form on 64004 points" in body
    assert "unsupported exodus: exodus implements lif, if neurons, not 'adlif'" in lines
    data = json.loads(out.read_text())
    assert data["passed"] and data["unsupported"] == {
        "exodus": "exodus implements lif, if neurons, not 'adlif'"
    }
    assert (
        data["surrogate_body"]["passed"]
        and data["surrogate_body"]["max_rel_err"]["float64"] < 1e-10
    )
    statuses = by_method(out)
    assert set(statuses) == {"bptt", "adlif-unrolled"}  # exodus ran no case
    for method in ("bptt", "adlif-unrolled"):
        counts = list(statuses[method].values())
        assert counts.count("passed") == 21 - LIF_VARIANTS - SURROGATE_VARIANTS, statuses[method]
        assert counts.count("skipped") == LIF_VARIANTS + SURROGATE_VARIANTS
    assert statuses["adlif-unrolled"]["trainable-tau-threshold"] == "passed"


def test_a_surrogate_body_10_percent_off_stops_the_run_in_one_line(invoke, tmp_path):
    out = tmp_path / "c.json"
    result = invoke("conformance", "--grad", "bptt", "--surrogate", "sigmoid_body", "--json", out)
    print(result.stderr)
    assert result.exit_code == 1
    assert result.stdout == ""  # no gradient case ran
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("failed: surrogate sigmoid_body(slope=5.0): its C++/CUDA body")
    assert "differs from its torch form (__call__) by max rel err 1.0e-01 in float64" in line
    data = json.loads(out.read_text())
    assert data["passed"] is False and data["results"] == []
    assert data["surrogate_body"]["max_rel_err"]["float64"] == pytest.approx(0.1, rel=1e-6)


def test_a_correct_surrogate_passes_the_body_check_and_the_cases(invoke, tmp_path):
    out = tmp_path / "c.json"
    result = invoke("conformance", "--grad", "exodus", "--surrogate", "sigmoid", "--json", out)
    assert result.exit_code == 0, result.output
    statuses = list(by_method(out)["exodus"].values())  # EXODUS's kernels inline the body
    assert statuses.count("passed") == 21 - SURROGATE_VARIANTS - 1  # multi-spike: not offered
    assert statuses.count("failed") == 0


@pytest.mark.slow
def test_a_neuron_step_that_differs_from_the_method_fails_every_case(invoke, tmp_path):
    out = tmp_path / "c.json"
    result = invoke(
        "conformance", "--grad", "adlif-unrolled-step", "--neuron", "adlif_step", "--json", out
    )
    print(result.stdout)
    assert result.exit_code == 1
    statuses = by_method(out)["adlif-unrolled-step"]
    ran = {case: s for case, s in statuses.items() if s != "skipped"}
    assert len(ran) == 21 - LIF_VARIANTS, statuses
    # the adaptation current starts at zero: a single step cannot tell the two apart
    assert ran.pop("T=1") == "passed" and set(ran.values()) == {"failed"}, statuses
    details = [
        r["detail"] for r in json.loads(out.read_text())["results"] if r["status"] == "failed"
    ]
    assert all(d.startswith("forward differs") for d in details)


@pytest.mark.slow
def test_pytest_route_checks_the_plugin_neuron_and_surrogate(installed, tmp_path):
    args = ["--snnkit-grad", "adlif-unrolled", "--snnkit-grad", "exodus", "-q", "-rs"]
    proc = conformance_pytest(
        *args, "--snnkit-neuron", "adlif", "--snnkit-surrogate", "sigmoid", cwd=tmp_path
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = 21 - LIF_VARIANTS - SURROGATE_VARIANTS
    assert f"{runs + 1} passed, {LIF_VARIANTS + SURROGATE_VARIANTS + 1} skipped" in proc.stdout
    assert "unsupported: exodus implements lif, if neurons, not 'adlif'" in proc.stdout


@pytest.mark.slow
def test_pytest_route_fails_a_broken_surrogate_body_before_the_cases(installed, tmp_path):
    proc = conformance_pytest(
        "--snnkit-grad", "bptt", "--snnkit-surrogate", "sigmoid_body", "-q", "-rf", cwd=tmp_path
    )
    print(proc.stdout)
    assert proc.returncode == 1
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
    ids = [ln.split("[", 1)[1].split("]", 1)[0] for ln in failed]
    assert ids[0] == "surrogate-body-sigmoid_body"  # first, before any gradient case
    assert len(ids) == 1 + 21  # then every gradient case fails: not run
    assert "max rel err 1.0e-01 in float64" in proc.stdout
    assert "not run: surrogate sigmoid_body(slope=5.0)" in proc.stdout


def test_pytest_route_refuses_an_unknown_neuron(installed, tmp_path):
    proc = conformance_pytest("--snnkit-neuron", "nosuch", "-q", cwd=tmp_path)
    assert proc.returncode == 4  # pytest's usage error
    assert "unknown neuron 'nosuch'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_event_methods_are_unsupported_when_a_neuron_or_surrogate_is_named(tmp_path, monkeypatch):
    invoke = cli_invoker(monkeypatch, tmp_path, width=250)
    out = tmp_path / "c.json"
    result = invoke("conformance", "--grad", "exact-autograd", "--neuron", "lif", "--json", out)
    assert result.exit_code == 0, result.output  # reported, not failed
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("unsupported")]
    assert line.startswith("unsupported exact-autograd: exact-autograd is an event method")
    data = json.loads(out.read_text())
    assert data["results"] == [] and list(data["unsupported"]) == ["exact-autograd"]
