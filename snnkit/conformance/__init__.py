"""The conformance suite: every gradient method's gradients against its declared oracle.

``check(method)`` runs the cases that fit the method's representation:
raster methods against BPTT (:mod:`snnkit.conformance.raster`), event methods against
finite differences of the event-exact simulator (:mod:`snnkit.conformance.events`).
An exact event method is also compared, case by case in float64, with every other exact
event method given as a peer (a :class:`PlannedCase` with ``peer`` set, shown as
``"deep = eventprop"``): exact methods must agree to rounding (:func:`exact_event_methods`
lists a registry's).
The same cases run from ``snnkit conformance`` and from pytest
(``pytest --pyargs snnkit.conformance --snnkit-grad NAME``).

Raster cases run with a neuron and a surrogate under test (``neuron=``, ``surrogate=``;
``--neuron`` / ``--surrogate`` on the command line), against the generic BPTT oracle
looping that neuron's own step. :func:`unsupported` says when a method cannot be checked
with them (not a failure); a surrogate's C++/CUDA body is checked against its torch form
first (:mod:`snnkit.conformance.surrogate_body`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from snnkit.conformance.metrics import TOLERANCES, Comparison, compare
from snnkit.conformance.result import CaseResult, PlannedCase
from snnkit.errors import SnnkitError
from snnkit.methods import GradientMethod

__all__ = [
    "TOLERANCES",
    "CaseResult",
    "Comparison",
    "PlannedCase",
    "case_names",
    "check",
    "compare",
    "exact_event_methods",
    "iter_cases",
    "plan",
    "run_case",
    "subject",
    "unsupported",
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


def _exact_events(method: GradientMethod) -> bool:
    return method.representation == "events" and method.oracle == "exact-events" and method.exact


def exact_event_methods(registry) -> list[GradientMethod]:
    """The registry's exact event methods: each one's peers for agreement (a clashing name
    is nobody's peer: which of its methods is meant is unknown)."""
    methods = (registry.gradient(name) for name in registry.available("gradient"))
    return [m for m in methods if _exact_events(m)]


def subject(registry, neuron: str | None = None, surrogate: str | None = None, **params):
    """The neuron (with ``params``) and surrogate named for a run, from ``registry`` (None
    where not named); :class:`SnnkitError` for an unknown name or a neuron the oracle cannot
    check (one that does not spike, or defines no step)."""
    from snnkit.reference.bptt import BPTT

    if params and neuron is None:
        raise SnnkitError(f"neuron parameters {', '.join(params)} given without a neuron name")
    spec = registry.neuron(neuron, **params) if neuron is not None else None
    if spec is not None:
        reason = BPTT().supports(spec)
        if reason is not None:
            raise SnnkitError(
                f"neuron '{neuron}' cannot be checked against the BPTT oracle: {reason}"
            )
    return spec, registry.surrogate(surrogate) if surrogate is not None else None


def unsupported(method: GradientMethod, neuron=None, surrogate=None) -> str | None:
    """Why ``method`` cannot be checked with the neuron and surrogate under test (None
    where it can): the neuron is not of a kind it simulates, or it is an event method,
    whose cases check its own continuous-time LIF and use no surrogate."""
    if method.representation != "raster":
        if neuron is None and surrogate is None:
            return None
        return (
            f"{method.name} is an event method: its cases check its own continuous-time LIF, "
            "without a surrogate; a neuron or surrogate under test applies to raster methods"
        )
    return None if neuron is None else method.supports(neuron)


def plan(
    method: GradientMethod, dtypes: Iterable[str] = ("float64",), peers: Iterable = ()
) -> list[PlannedCase]:
    """The cases :func:`iter_cases` runs: every case in every dtype, then for an exact event
    method its agreement with each other exact peer (float64)."""
    planned = [PlannedCase(name, dtype) for dtype in dtypes for name in case_names(method)]
    if _exact_events(method):
        others = [p for p in peers if _exact_events(p) and p.name != method.name]
        planned += [
            PlannedCase(c, "float64", peer=p.name) for p in others for c in case_names(method)
        ]
    return planned


def run_case(
    method: GradientMethod,
    case_name: str,
    dtype: str = "float64",
    device: str = "cpu",
    peers: Iterable = (),
    *,
    peer: str | None = None,
    neuron=None,
    surrogate=None,
) -> CaseResult:
    """Run the case called ``case_name`` for ``method``: against its oracle, or with
    ``peer`` its agreement with the exact event method of that name, from ``peers``."""
    if dtype not in ("float64", "float32"):
        raise SnnkitError(f"dtype must be float64 or float32, got {dtype!r}")
    case = {c.name: c for c in _cases(method)}.get(case_name)
    if case is None:
        raise SnnkitError(
            f"no conformance case '{case_name}'; cases: {', '.join(case_names(method))}"
        )
    if method.representation == "raster":
        from snnkit.conformance.raster import run_raster_case

        return run_raster_case(method, case, dtype, device, neuron=neuron, surrogate=surrogate)
    from snnkit.conformance.events import run_agreement_case, run_event_case

    if peer is not None:
        other = next((p for p in peers if p.name == peer), None)
        if other is None or not _exact_events(method) or dtype != "float64":
            raise SnnkitError(
                f"agreement '{PlannedCase(case_name, dtype, peer).name}' needs two exact "
                "event methods (the peer given in peers) and float64"
            )
        return run_agreement_case(method, other, case, device)
    return run_event_case(method, case, dtype, device)


def iter_cases(
    method: GradientMethod,
    dtypes: Iterable[str] = ("float64",),
    device: str = "cpu",
    peers: Iterable = (),
    *,
    neuron=None,
    surrogate=None,
) -> Iterator[CaseResult]:
    """Run every pair of :func:`plan`, yielding results as they finish; ``neuron`` and
    ``surrogate`` (raster methods) replace the default LIF and exponential surrogate."""
    peers = list(peers)
    for p in plan(method, dtypes, peers):
        yield run_case(
            method, p.case, p.dtype, device, peers, peer=p.peer, neuron=neuron, surrogate=surrogate
        )


def check(
    method: GradientMethod,
    dtypes: Iterable[str] = ("float64",),
    device: str = "cpu",
    peers: Iterable = (),
    **subject,
) -> list[CaseResult]:
    """All results for ``method`` (see :func:`iter_cases`)."""
    return list(iter_cases(method, dtypes, device, peers, **subject))
