"""Tests for snnkit.bench: tiny configs only (the whole file runs in a few seconds)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from rich.console import Console

from snnkit.bench import (
    BASELINE,
    DEFAULT_CONFIGS,
    PEERS,
    BenchConfig,
    from_json,
    machine_info,
    results_table,
    run_bench,
    to_json,
)
from snnkit.errors import SnnkitError

TINY = [BenchConfig(20, 2, 16, "neuron"), BenchConfig(20, 2, 16, "linear+lif")]


def _installed(peer: str) -> bool:
    return importlib.util.find_spec(peer) is not None


@pytest.fixture(scope="module")
def tiny_results():
    return run_bench(["exodus"], TINY, repeats=1, warmup=1)


def test_default_configs_cover_sizes_and_parts():
    sizes = {(c.steps, c.batch, c.neurons) for c in DEFAULT_CONFIGS}
    assert sizes == {(100, 32, 256), (500, 16, 512), (500, 16, 4096)}
    assert {c.part for c in DEFAULT_CONFIGS} == {"neuron", "linear+lif"}


def test_bptt_is_always_the_baseline(tiny_results):
    got = {(r.method, r.part) for r in tiny_results}
    assert got == {(m, p) for m in ("exodus", BASELINE) for p in ("neuron", "linear+lif")}
    for r in tiny_results:
        assert r.ok, r.skipped
        assert r.forward_ms > 0 and r.backward_ms > 0 and r.total_ms > 0
        assert math.isfinite(r.ratio_vs_bptt) and r.ratio_vs_bptt > 0
        assert math.isfinite(r.saved_ratio_vs_bptt) and r.saved_ratio_vs_bptt > 0
        assert r.saved_mb > 0 and r.peak_mb is None  # peak memory is CUDA only
        assert 0 < r.spike_rate < 1
        if r.method == BASELINE:
            assert r.ratio_vs_bptt == 1.0 and r.saved_ratio_vs_bptt == 1.0


def test_same_inputs_for_every_method(tiny_results):
    """Both methods simulate the same neurons on the same inputs: same spike rate."""
    for part in ("neuron", "linear+lif"):
        rates = {r.spike_rate for r in tiny_results if r.part == part}
        assert len(rates) == 1


def test_saved_memory_exodus_vs_bptt(tiny_results):
    """EXODUS saves one [T,B,N] membrane. With fixed neuron parameters autograd BPTT saves
    the same per-step membranes (nothing else needs saving), so the two are about equal;
    with trained tau and threshold BPTT also saves per-step tensors for their gradients
    and EXODUS keeps strictly less."""
    bytes_tbn = 20 * 2 * 16 * 4 / 2**20
    by = {(r.method, r.part): r for r in tiny_results}
    neuron_exodus, neuron_bptt = by["exodus", "neuron"], by[BASELINE, "neuron"]
    assert bytes_tbn <= neuron_exodus.saved_mb <= 1.2 * bytes_tbn
    assert neuron_bptt.saved_mb >= bytes_tbn

    trained = run_bench(["exodus"], [BenchConfig(20, 2, 16, "neuron", trainable=True)], repeats=1)
    by = {r.method: r for r in trained}
    assert by["exodus"].saved_mb < by[BASELINE].saved_mb
    assert by["exodus"].saved_ratio_vs_bptt > 1.5


def test_peers_not_installed_are_skipped_not_errors():
    results = run_bench(["exodus", *PEERS], TINY[:1], repeats=1)
    by = {r.method: r for r in results}
    assert set(by) == {BASELINE, "exodus", *PEERS}
    for peer in PEERS:
        r = by[peer]
        if not _installed(peer):
            assert r.skipped.startswith("not installed")
            assert r.total_ms is None and r.ratio_vs_bptt is None
        else:  # installed: measured on the same inputs as BPTT (same LIF, same spikes)
            assert r.ok, r.skipped
            if peer == "snntorch":  # resets a membrane >= 2 theta twice (docs/results.md)
                assert abs(r.spike_rate - by[BASELINE].spike_rate) < 0.01
            else:
                assert r.spike_rate == by[BASELINE].spike_rate


def test_peers_in_their_library_convention_and_trained_parameters_skipped():
    """``NAME:convention=library`` times a peer as its users run it; trained tau and
    threshold are not adapted, so that measurement is skipped with the reason."""
    installed = [p for p in PEERS if _installed(p)]
    if not installed:
        pytest.skip("no peer library installed (pip install 'snnkit[peers]')")
    peer = installed[0]
    configs = [TINY[0], TINY[1], BenchConfig(20, 2, 16, "neuron", trainable=True)]
    results = run_bench([f"{peer}:convention=library", peer], configs, repeats=1)
    by = {(r.method, r.part, r.trainable): r for r in results}
    assert by[f"{peer}:convention=library", "neuron", False].ok
    assert by[f"{peer}:convention=library", "linear+lif", False].ok
    assert "fixed tau and threshold" in by[peer, "neuron", True].skipped


def test_timeout_skips_with_a_reason():
    configs = [BenchConfig(10, 2, 8, "neuron"), BenchConfig(20, 2, 8, "neuron")]
    results = run_bench(["exodus"], configs, repeats=2, timeout_s=1e-9)
    assert len(results) == 4
    for r in results:
        assert not r.ok and r.total_ms is None
    first = [r for r in results if r.steps == 10]
    second = [r for r in results if r.steps == 20]
    # no smaller measurement: one untimed iteration, then skipped; then extrapolated
    assert all("untimed iteration" in r.skipped for r in first)
    assert all(r.skipped.startswith("estimated") for r in second)


def test_json_round_trip_and_table(tiny_results):
    data = to_json(tiny_results, meta=machine_info())
    text = json.dumps(data)
    back = json.loads(text)
    assert back["meta"]["cpu_count"] >= 1 and back["meta"]["torch"]
    assert from_json(back) == tiny_results
    console = Console(record=True, width=200)
    console.print(results_table(tiny_results))
    out = console.export_text()
    assert "exodus" in out and "bptt" in out and "linear+lif" in out


def test_bad_arguments():
    with pytest.raises(SnnkitError, match="part"):
        BenchConfig(10, 2, 4, "everything")
    with pytest.raises(SnnkitError, match="steps"):
        BenchConfig(0, 2, 4)
    with pytest.raises(SnnkitError, match="repeats"):
        run_bench(["exodus"], TINY, repeats=0)
    with pytest.raises(SnnkitError):
        run_bench(["no-such-method"], TINY[:1], repeats=1)


def test_methods_with_layer_options():
    """``exodus:save=input`` is timed on Linear+LIF with its layer option (it saves far less
    than the default there) and skipped, with the reason, on the neuron part."""
    results = run_bench(["exodus", "exodus:save=input"], TINY, repeats=1, warmup=1)
    by = {(r.method, r.part): r for r in results}
    assert "neuron part times dynamics alone" in by["exodus:save=input", "neuron"].skipped
    saving, default = by["exodus:save=input", "linear+lif"], by["exodus", "linear+lif"]
    assert saving.ok and saving.saved_mb < default.saved_mb / 2
    with pytest.raises(SnnkitError, match="KEY=VALUE after a colon"):
        run_bench(["exodus:save"], TINY[:1], repeats=1)
