"""The conformance suite as pytest tests (``pytest --pyargs snnkit.conformance``)."""

from __future__ import annotations

import pytest


def test_gradients_match_oracle(snnkit_case):
    from snnkit.conformance import run_case
    from snnkit.conformance.pytest_plugin import SurrogateBody, Unavailable, Unsupported
    from snnkit.conformance.surrogate_body import check_body

    if isinstance(snnkit_case, Unavailable):
        pytest.fail(snnkit_case.reason, pytrace=False)
    if isinstance(snnkit_case, Unsupported):
        pytest.skip(f"unsupported: {snnkit_case.reason}")
    if isinstance(snnkit_case, SurrogateBody):
        body = check_body(snnkit_case.surrogate)
        if not body.passed:
            pytest.fail(body.summary(), pytrace=False)
        return
    method, planned, device, peers, subject = snnkit_case
    if subject.get("surrogate") is not None:
        body = check_body(subject["surrogate"])  # done once, by the first test
        if not body.passed:
            pytest.fail(f"not run: {body.summary()}", pytrace=False)
    result = run_case(
        method, planned.case, planned.dtype, device, peers, peer=planned.peer, **subject
    )
    if result.status == "skipped":
        pytest.skip(result.detail)
    assert result.passed, (
        f"{result.method} / {result.name} / {result.dtype}: {result.status} — "
        f"max rel err {result.max_rel_err:.3e} (tolerance {result.tolerance:.0e}), "
        f"cosine {result.cosine:.6f}; {result.detail}"
    )
