"""A plugin's own test: the snnkit conformance suite, run against this method.

Equivalent on the command line:
    pytest --pyargs snnkit.conformance --snnkit-grad checkpointed-bptt
    snnkit conformance --grad checkpointed-bptt
"""

import pytest
from snnkit_checkpointed import CheckpointedBPTT

from snnkit.conformance import case_names, run_case

METHOD = CheckpointedBPTT()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", case_names(METHOD))
def test_conformance(case, dtype):
    result = run_case(METHOD, case, dtype)
    if result.status == "skipped":
        pytest.skip(result.detail)
    assert result.passed, result.detail
