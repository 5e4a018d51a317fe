"""The conformance suite: every gradient method's gradients against its declared oracle.

``check(method)`` runs the cases that fit the method's representation:
raster methods against BPTT (:mod:`snnkit.conformance.raster`), event methods against
finite differences of the event-exact simulator (:mod:`snnkit.conformance.events`).
The same cases run from ``snnkit conformance`` and from pytest
(``pytest --pyargs snnkit.conformance --snnkit-grad NAME``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from snnkit.conformance.metrics import TOLERANCES, Comparison, compare
from snnkit.conformance.result import CaseResult
from snnkit.errors import SnnkitError
from snnkit.methods import GradientMethod

__all__ = [
    "TOLERANCES",
    "CaseResult",
    "Comparison",
    "case_names",
    "check",
    "compare",
    "iter_cases",
    "run_case",
]


def _cases(method: GradientMethod) -> tuple:
    if method.representation == "raster":
        from snnkit.conformance.raster import RASTER_CASES

        return RASTER_CASES
    from snnkit.conformance.events import EVENT_CASES

    return EVENT_CASES


def case_names(method: GradientMethod) -> list[str]:
    """Names of the cases that apply to ``method``."""
    return [case.name for case in _cases(method)]


def run_case(
    method: GradientMethod, case_name: str, dtype: str = "float64", device: str = "cpu"
) -> CaseResult:
    """Run the case called ``case_name`` for ``method``."""
    if dtype not in ("float64", "float32"):
        raise SnnkitError(f"dtype must be float64 or float32, got {dtype!r}")
    case = {c.name: c for c in _cases(method)}.get(case_name)
    if case is None:
        raise SnnkitError(
            f"no conformance case '{case_name}'; cases: {', '.join(case_names(method))}"
        )
    if method.representation == "raster":
        from snnkit.conformance.raster import run_raster_case

        return run_raster_case(method, case, dtype, device)
    from snnkit.conformance.events import run_event_case

    return run_event_case(method, case, dtype, device)


def iter_cases(
    method: GradientMethod, dtypes: Iterable[str] = ("float64",), device: str = "cpu"
) -> Iterator[CaseResult]:
    """Run every applicable case in every dtype, yielding results as they finish."""
    for dtype in dtypes:
        for name in case_names(method):
            yield run_case(method, name, dtype, device)


def check(
    method: GradientMethod, dtypes: Iterable[str] = ("float64",), device: str = "cpu"
) -> list[CaseResult]:
    """All results for ``method`` (see :func:`iter_cases`)."""
    return list(iter_cases(method, dtypes, device))
