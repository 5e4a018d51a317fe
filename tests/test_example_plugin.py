"""The example third-party plugin in examples/: discovered through its entry point, conformant."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from fixtures.distributions import write_distribution
from fixtures.memory import saved_bytes

import snnkit.registry
from snnkit import LIF
from snnkit.conformance import check
from snnkit.reference.bptt import BPTT

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "snnkit-checkpointed-bptt"
DIST = "snnkit-checkpointed-bptt"


def _installed() -> bool:
    try:
        metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def example_registry(tmp_path, monkeypatch):
    """The registry with the example plugin discovered through a real entry point.

    Uses the pip-installed distribution when present (``make test`` installs it); otherwise
    writes the same dist-info next to the example's source, as pip would.
    """
    if os.environ.get("SNNKIT_REQUIRE_EXAMPLE") == "1" and not _installed():
        pytest.fail(f"{DIST} is not installed: pip install -e {EXAMPLE}")
    if not _installed():
        write_distribution(
            tmp_path, DIST, "0.1.0", None, {"checkpointed": "snnkit_checkpointed.plugin"}
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    yield snnkit.registry.get_registry()
    monkeypatch.setattr(snnkit.registry, "_REGISTRY", None)
    for name in [m for m in sys.modules if m.startswith("snnkit_checkpointed")]:
        if not _installed():
            del sys.modules[name]


def test_example_is_discovered_and_conformant(example_registry):
    entry = example_registry.entry("gradient", "checkpointed-bptt")
    assert entry.plugin.distribution == DIST and entry.plugin.error is None
    results = check(entry.obj, ["float64", "float32"])
    assert results and all(r.passed for r in results), [
        (r.case, r.detail) for r in results if not r.passed
    ]


def _saved_bytes(net, x) -> int:
    return saved_bytes(lambda: net(x).sum())


def test_example_saves_memory(example_registry):
    """What the example is for: far less saved for backward than BPTT on long sequences."""
    method = example_registry.gradient("checkpointed-bptt")
    torch.manual_seed(0)
    x = (torch.rand(200, 8, 20) < 0.2).float()
    ours = method.layer(LIF(tau_syn=5.0), 20, 256, segment=10)
    ref = BPTT().layer(LIF(tau_syn=5.0), 20, 256)
    ref.load_state_dict(ours.state_dict())
    # input spikes [T,B,20] + T/S boundary states [B,256] vs several [B,256] per step: ~0.24
    assert _saved_bytes(ours, x) < 0.3 * _saved_bytes(ref, x)
