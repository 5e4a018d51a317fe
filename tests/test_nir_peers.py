"""snnkit -> NIR -> snntorch / norse and back, for the pairs docs/nir.md lists as agreeing:
the same output spikes on the same input. Skipped where a peer is not installed (the
optional peers: pip install -c constraints.txt snntorch norse nirtorch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("nir", reason="the optional extra 'nir' is not installed")
pytest.importorskip("nirtorch", reason="nirtorch (the peers' NIR importer) is not installed")

_spec = importlib.util.spec_from_file_location(
    "nir_peers", Path(__file__).resolve().parents[1] / "benchmarks" / "nir_peers.py"
)
nir_peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nir_peers)

AGREE = [  # (peer, reset, architecture) that give the same spikes
    ("snntorch", "zero", "CubaLIF feed-forward"),
    ("snntorch", "zero", "LIF feed-forward"),
    ("norse", "zero", "CubaLIF feed-forward"),
    ("norse", "subtract", "CubaLIF feed-forward"),
    ("norse", "zero", "CubaLIF recurrent"),
    ("norse", "subtract", "CubaLIF recurrent"),
    ("norse", "zero", "IF feed-forward"),
]


@pytest.mark.parametrize("peer, reset, name", AGREE)
def test_a_snnkit_network_runs_the_same_in_the_peer(peer, reset, name):
    pytest.importorskip(peer, reason=f"the peer {peer} is not installed")
    build, features = nir_peers.architectures(reset)[name]
    row = nir_peers.compare(peer, build, features, reset)
    assert row["spikes"] > 0
    assert row["result"] == "same", row["detail"]


def test_a_subtractive_reset_is_lost_in_snntorch():
    """snntorch's importer always resets to zero: the documented disagreement, checked so
    that the table in docs/nir.md stays true."""
    pytest.importorskip("snntorch", reason="the peer snntorch is not installed")
    build, features = nir_peers.architectures("subtract")["CubaLIF feed-forward"]
    assert nir_peers.compare("snntorch", build, features, "subtract")["result"] == "differ"


def test_a_snntorch_network_runs_the_same_in_snnkit():
    pytest.importorskip("snntorch", reason="the peer snntorch is not installed")
    row = nir_peers.snntorch_to_snnkit()
    assert row["spikes"] > 0
    assert row["result"] == "same", row["detail"]
