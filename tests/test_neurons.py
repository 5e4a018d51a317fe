"""Neuron specs: derived constants and validation."""

from __future__ import annotations

import math

import pytest

from snnkit.errors import SnnkitError
from snnkit.neurons import IF, LI, LIF


def test_lif_constants():
    n = LIF(tau_mem=20.0, tau_syn=5.0, dt=0.5, threshold=2.0)
    assert n.alpha == pytest.approx(math.exp(-0.5 / 20.0), rel=1e-15)
    assert n.beta == pytest.approx(math.exp(-0.5 / 5.0), rel=1e-15)
    assert n.reset_amount == 2.0
    assert LIF(subtract=0.5).reset_amount == 0.5
    assert LIF().beta is None


def test_if_has_no_leak():
    assert IF().alpha == 1.0
    assert IF().kind == "if"
    with pytest.raises(SnnkitError, match="no leak"):
        IF(tau_mem=10.0)


def test_li_is_not_spiking():
    assert not LI().spiking and LIF().spiking
    assert LI(tau_mem=10.0).alpha == pytest.approx(math.exp(-0.1))


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"tau_mem": -1.0}, "tau_mem"),
        ({"tau_mem": float("nan")}, "tau_mem"),
        ({"tau_syn": 0.0}, "tau_syn"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": -1.0}, "threshold"),
        ({"reset": "bogus"}, "reset"),
        ({"dt": 0.0}, "dt"),
        ({"max_spikes": 3}, "multi_spike"),
        ({"multi_spike": True, "max_spikes": 0}, "max_spikes"),
        ({"multi_spike": True, "reset": "zero"}, "multi_spike"),
        ({"reset": "zero", "subtract": 0.5}, "subtract"),
    ],
)
def test_validation(kwargs, word):
    with pytest.raises(SnnkitError, match=word):
        LIF(**kwargs)


def test_replace_validates_and_rejects_unknown():
    n = LIF().replace(tau_mem=5.0)
    assert n.tau_mem == 5.0
    with pytest.raises(SnnkitError, match="no parameter tau_foo"):
        LIF().replace(tau_foo=1.0)
    with pytest.raises(SnnkitError, match="threshold"):
        LIF().replace(threshold=-2.0)
