"""Acceptance (slow): `snnkit run --grad slayer` trains Yin-Yang to >= 90 % test accuracy."""

from __future__ import annotations

import pytest
import torch

from snnkit.train import RunConfig, run


@pytest.mark.slow
def test_yinyang_reaches_90_percent(tmp_path):
    """The default Yin-Yang recipe (LIF, tau_syn 5, hidden 200), 5 epochs instead of 30."""
    torch.set_num_threads(2)
    config = RunConfig(grad="slayer", epochs=5, seed=0)
    result = run(config, db=tmp_path / "r.db", out=tmp_path / "c", progress=False)
    assert result.final.test_accuracy >= 0.90
