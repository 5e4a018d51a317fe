"""The conformance suite: BPTT passes, every deliberately broken method fails."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from broken_methods import BROKEN, BROKEN_EVENTS, SLIGHTLY_OFF_EVENTS, SLIGHTLY_OFF_RASTER
from fixtures.pytest_route import conformance_pytest
from typer.testing import CliRunner

from snnkit.cli import app
from snnkit.conformance import case_names, check, compare, run_case
from snnkit.errors import SnnkitError
from snnkit.neurons import LIF
from snnkit.reference.bptt import BPTT, DetachedResetBPTT


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", [BPTT(), DetachedResetBPTT()], ids=lambda m: m.name)
def test_reference_methods_pass(method, dtype):
    results = check(method, [dtype])
    assert len(results) == len(case_names(method)) >= 12
    bad = [(r.case, r.status, r.detail) for r in results if not r.passed]
    assert not bad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_methods_fail(kind, dtype):
    results = check(BROKEN[kind], [dtype])
    assert not any(r.status == "error" for r in results), [
        r.detail for r in results if r.status == "error"
    ]
    failed = [r for r in results if r.status == "failed"]
    # the break must show in (nearly) every case, and by far more than the tolerance
    assert len(failed) >= len(results) - 1, [(r.case, r.max_rel_err) for r in results if r.passed]
    assert all(r.max_rel_err > 100 * r.tolerance for r in failed)


def test_detached_reset_is_not_an_oracle_for_a_through_method():
    """BPTT checked against the detached oracle must fail: the two oracles differ."""
    through = BPTT()
    through_as_detached = type(
        "Mislabelled", (BPTT,), {"name": "x", "oracle": "bptt-detached-reset"}
    )()
    assert run_case(through, "single-layer").passed
    assert run_case(through_as_detached, "single-layer").status == "failed"


def test_compare_metrics():
    ref = [torch.tensor([1.0, -2.0, 0.0]), torch.tensor([4.0])]
    assert compare(ref, ref).max_rel_err == 0.0 and compare(ref, ref).cosine == pytest.approx(1.0)
    off = [torch.tensor([1.0, -2.0, 0.2]), torch.tensor([4.0])]
    assert compare(off, ref).max_rel_err == pytest.approx(0.1)  # 0.2 / max|ref| = 0.2 / 2
    assert compare([-r for r in ref], ref).cosine == pytest.approx(-1.0)
    assert compare([2 * r for r in ref], ref).norm_ratio == pytest.approx(2.0)
    nan_ref = [torch.tensor([1.0, math.nan])]
    assert (
        compare([torch.tensor([1.0, 5.0])], nan_ref).max_rel_err == 0.0
    )  # refused entries ignored
    assert (
        compare([torch.tensor([math.nan, 1.0])], [torch.tensor([1.0, 1.0])]).max_rel_err == math.inf
    )


def test_float64_catches_an_error_that_float32_lets_through():
    """Why float64 is the default dtype of both routes (docs/plugin-authors.md)."""
    in_float32 = check(SLIGHTLY_OFF_RASTER, ["float32"])
    assert in_float32 and all(r.passed for r in in_float32), [
        (r.case, r.max_rel_err) for r in in_float32 if not r.passed
    ]
    in_float64 = check(SLIGHTLY_OFF_RASTER, ["float64"])
    assert all(r.status == "failed" for r in in_float64), [(r.case, r.status) for r in in_float64]
    assert all(5e-6 < r.max_rel_err < 1e-4 for r in in_float64)


def test_unknown_case_and_dtype():
    with pytest.raises(SnnkitError, match="no conformance case"):
        run_case(BPTT(), "nope")
    with pytest.raises(SnnkitError, match="dtype"):
        run_case(BPTT(), "single-layer", "float16")


def test_cli_json_and_exit_codes(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c.json"
    result = runner.invoke(app, ["conformance", "--grad", "bptt", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["passed"] is True
    keys = {"method", "case", "dtype", "device", "max_rel_err", "cosine", "tolerance", "passed"}
    assert data["results"] and all(keys <= set(r) for r in data["results"])
    assert runner.invoke(app, ["conformance", "--grad", "nope"]).exit_code == 2
    assert runner.invoke(app, ["conformance", "--dtype", "float16"]).exit_code == 2


def test_cli_exits_1_when_a_plugin_method_fails(tmp_path, monkeypatch):
    """A broken method installed as a plugin (through a real entry point) fails the command."""
    from fixtures.distributions import write_distribution

    import snnkit.registry

    source = (Path(__file__).parent / "broken_methods.py").read_text()
    write_distribution(tmp_path, "snnkit-broken", "0.1", source, {"broken": "snnkit_broken"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    out = tmp_path / "c.json"
    result = CliRunner().invoke(
        app, ["conformance", "--grad", "broken-sign-flip", "--json", str(out)]
    )
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    sys.modules.pop("snnkit_broken", None)
    assert result.exit_code == 1, result.output
    assert json.loads(out.read_text())["passed"] is False


def test_pytest_plugin_runs_the_suite(tmp_path):
    proc = conformance_pytest("--snnkit-grad", "bptt", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(case_names(BPTT()))} passed" in proc.stdout


# --- event methods -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_autograd_matches_finite_differences(dtype):
    from snnkit.reference.exact_autograd import ExactAutograd

    results = check(ExactAutograd(), [dtype])
    assert len(results) >= 8
    bad = [(r.case, r.status, r.detail) for r in results if not r.passed]
    assert not bad
    # well inside the tolerance: what remains is finite-difference noise (~eps/h = 1e-10 relative
    # to the loss, measured <= 4e-8 relative to the gradients)
    if dtype == "float64":
        assert max(r.max_rel_err for r in results) < 0.1 * results[0].tolerance


@pytest.mark.parametrize("kind", list(BROKEN_EVENTS))
def test_broken_event_methods_fail(kind):
    results = check(BROKEN_EVENTS[kind], ["float64"])
    assert results and all(r.status == "failed" for r in results), [
        (r.case, r.status) for r in results
    ]


def test_event_cases_are_away_from_critical_points():
    """Every event case's draw passes the criticality screen and exercises spikes in every layer."""
    from snnkit.conformance.events import EVENT_CASES, reference_draw
    from snnkit.reference.exact_autograd import exact_neuron
    from snnkit.reference.finite_differences import critical_points

    for case in EVENT_CASES:
        _, inputs, result = reference_draw(case)
        assert critical_points(result, inputs, exact_neuron(case.neuron), case.duration) == []
        assert all(int(torch.isfinite(e.times).sum()) >= 2 for e in result.spikes)


def test_event_method_unsupported_neuron_is_skipped():
    from snnkit.reference.exact_autograd import ExactAutograd

    assert ExactAutograd().supports(LIF(tau_mem=10.0)) is not None  # no synaptic current
    assert ExactAutograd().supports(LIF(tau_mem=10.0, tau_syn=5.0)) is None


def test_exact_event_methods_are_checked_against_each_other():
    """An error far below the finite-difference tolerance passes against finite differences
    and fails against another exact method; the exact reference agrees with itself."""
    from snnkit.conformance import plan
    from snnkit.reference.exact_autograd import ExactAutograd

    peer = ExactAutograd()
    results = check(SLIGHTLY_OFF_EVENTS, ["float64"], peers=[peer])
    against_fd = [r for r in results if r.peer is None]
    agreement = [r for r in results if r.peer == "exact-autograd"]
    assert len(agreement) == len(against_fd) >= 8
    assert all(r.passed for r in against_fd)
    assert all(r.status == "failed" for r in agreement), [(r.name, r.status) for r in agreement]
    assert {r.name for r in agreement} == {f"{r.case} = exact-autograd" for r in against_fd}
    assert all(r.to_json()["case"] == r.name for r in results)
    assert all(1e-9 < r.max_rel_err < 1e-7 for r in agreement)
    # a method is never its own peer; raster methods and float32 get no agreement cases
    assert all(p.peer is None for p in plan(peer, ["float64"], peers=[peer]))
    assert all(p.peer is None for p in plan(BPTT(), ["float64"], peers=[peer]))
    assert {p.dtype for p in plan(SLIGHTLY_OFF_EVENTS, ["float32"], [peer]) if p.peer} == {
        "float64"
    }
