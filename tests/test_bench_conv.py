"""The convolutional case of ``snnkit bench --conv`` at a tiny size: every library runs the
same network from the same weights, the neuron cost is whole minus identity, the CLI
writes its table and JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from snnkit import bench_conv


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _outputs(names, steps=12, batch=2, spiking=True):
    modules, populations = bench_conv.shared_modules(0)
    x, _ = bench_conv._inputs(steps, batch, "cpu", torch.float64, 0)
    out = {}
    for name in names:
        runner = bench_conv._runner(name, modules, x, spiking)
        out[name] = runner.forward().detach()
    return out, populations


def test_the_network_is_the_dvs_gesture_recipe():
    modules, populations = bench_conv.shared_modules(0)
    convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 64, 64] and populations == 6
    assert modules[-1].in_features == 64 * 4 * 4 and modules[-1].out_features == 11


def test_snnkit_methods_and_spikingjelly_compute_the_same_network():
    """Same weights, same LIF (decay, threshold, subtractive reset): same output."""
    names = ["bptt", "exodus", "slayer", "rouser"]
    if _installed("spikingjelly"):
        names.append("spikingjelly")
    out, _ = _outputs(names)
    assert out["bptt"].abs().sum() > 0
    for name in names[1:]:
        torch.testing.assert_close(out[name], out["bptt"], rtol=1e-9, atol=1e-9, msg=name)


def test_identity_networks_agree_across_libraries():
    names = ["bptt", "exodus"] + [p for p in bench_conv.PEERS if _installed(p)]
    out, _ = _outputs(names, spiking=False)
    for name in names[1:]:
        torch.testing.assert_close(out[name], out["bptt"], msg=name)


def test_neuron_cost_is_whole_minus_identity():
    results = bench_conv.run_conv(["exodus"], repeats=1, steps=3, batch=1)
    by = {(r.method, r.variant): r for r in results}
    assert {m for m, _ in by} >= {"bptt", "exodus", *bench_conv.PEERS}
    for (method, variant), r in by.items():
        if r.skipped:
            assert r.skipped == "not installed" and method in bench_conv.PEERS
            continue
        if variant == "spiking":
            identity = by[(method, "identity")]
            assert r.neuron_ms == pytest.approx(r.total_ms - identity.total_ms)
            assert r.saved_mb > identity.saved_mb  # the neurons keep state for backward
    assert by[("bptt", "spiking")].ratio_vs_bptt == 1.0


def test_cli_bench_conv_writes_table_and_json(tmp_path, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    import snnkit.cli as cli

    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(bench_conv, "STEPS", 3)
    monkeypatch.setattr(bench_conv, "BATCH", 1)
    out = tmp_path / "conv.json"
    result = CliRunner().invoke(
        cli.app, ["bench", "--conv", "--grad", "exodus", "--repeats", "1", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "conv SNN" in result.stdout and "exodus" in result.stdout
    data = json.loads(out.read_text())
    assert data["schema"] == "snnkit-bench-conv/1" and data["network"]["steps"] == 3
    assert "load_average" in data["meta"]["machine"]
    methods = {r["method"] for r in data["results"]}
    assert {"bptt", "exodus", "snntorch", "spikingjelly"} <= methods
