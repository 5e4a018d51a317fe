"""`make gpu-check` never passes on a machine without a GPU: it says so and exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run make gpu-check")
def test_gpu_check_without_a_gpu_fails_and_says_why(tmp_path):
    out = tmp_path / "gpu-check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "no CUDA device" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    summary = json.loads(out.read_text())
    assert summary["passed"] is False and summary["device"] is None
