"""The conformance suite as pytest tests (``pytest --pyargs snnkit.conformance``)."""

from __future__ import annotations

import pytest


def test_gradients_match_oracle(snnkit_case):
    from snnkit.conformance import run_case
    from snnkit.conformance.pytest_plugin import Unavailable

    if isinstance(snnkit_case, Unavailable):
        pytest.fail(snnkit_case.reason, pytrace=False)
    method, case, dtype, device, peers = snnkit_case
    result = run_case(method, case, dtype, device, peers)
    if result.status == "skipped":
        pytest.skip(result.detail)
    assert result.passed, (
        f"{result.method} / {result.case} / {result.dtype}: {result.status} — "
        f"max rel err {result.max_rel_err:.3e} (tolerance {result.tolerance:.0e}), "
        f"cosine {result.cosine:.6f}; {result.detail}"
    )
