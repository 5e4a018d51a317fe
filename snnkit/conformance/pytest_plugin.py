"""pytest plugin (entry point ``pytest11``): run the conformance suite against a method.

In a plugin's repository::

    pytest --pyargs snnkit.conformance --snnkit-grad mymethod --snnkit-dtype float64 --snnkit-dtype float32

Each (method, case, dtype) becomes one test; skipped cases (the method does not offer
them) are reported as skips. ``--snnkit-neuron NAME`` and ``--snnkit-surrogate NAME`` run
the raster cases with that neuron and surrogate against the generic BPTT oracle: a method
that does not simulate the neuron is one skipped test saying why, and a surrogate's C++/CUDA
body is checked against its torch form first (test ``surrogate-body-NAME``; if it fails,
every gradient case fails with its reason). float64 is the default and the one that matters: its
tolerance (1e-10 for raster methods) exposes bugs of order 1e-5 that float32's (1e-4)
lets through. Without ``--snnkit-grad`` every installed method is checked, and each
plugin that failed to load and each clashing method name is one failing test (the run
cannot claim that every installed method conforms); with it, such problems elsewhere are
only listed in the summary. This module imports nothing heavy at load time, because
pytest loads it in every session of every project where snnkit is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

_PROBLEMS = pytest.StashKey[list]()
_SUBJECT = pytest.StashKey[dict]()


@dataclass(frozen=True)
class Unavailable:
    """A test parameter standing for a method that cannot be checked, and why."""

    reason: str


@dataclass(frozen=True)
class Unsupported:
    """A test parameter standing for a method that does not simulate the neuron (or, an
    event method, takes no neuron or surrogate) under test: skipped, with the reason."""

    reason: str


@dataclass(frozen=True)
class SurrogateBody:
    """A test parameter: the surrogate under test's C++/CUDA body against its torch form."""

    surrogate: object


def pytest_addoption(parser):
    group = parser.getgroup("snnkit", "snnkit gradient conformance")
    group.addoption(
        "--snnkit-grad",
        action="append",
        default=[],
        metavar="NAME",
        help="gradient method to check (repeatable); default: every installed one",
    )
    group.addoption(
        "--snnkit-dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="float64 (the default; exposes errors of order 1e-5 that float32 misses) "
        "and/or float32 (repeatable)",
    )
    group.addoption("--snnkit-device", default="cpu", help="cpu or cuda")
    group.addoption(
        "--snnkit-neuron",
        default=None,
        metavar="NAME",
        help="neuron under test for the raster cases (default: LIF)",
    )
    group.addoption(
        "--snnkit-surrogate",
        default=None,
        metavar="NAME",
        help="surrogate under test (default: exponential); its C++/CUDA body is checked first",
    )


def pytest_configure(config):
    """Resolve --snnkit-neuron/--snnkit-surrogate once; a wrong name is a usage error."""
    neuron = config.getoption("snnkit_neuron", None)
    surrogate = config.getoption("snnkit_surrogate", None)
    if neuron is None and surrogate is None:
        return
    from snnkit.conformance import subject
    from snnkit.errors import SnnkitError
    from snnkit.registry import get_registry

    try:
        spec, chosen = subject(get_registry(), neuron, surrogate)
    except SnnkitError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SUBJECT] = {"neuron": spec, "surrogate": chosen}


def pytest_generate_tests(metafunc):
    if "snnkit_case" not in metafunc.fixturenames:
        return
    from snnkit.conformance import exact_event_methods, plan, unsupported
    from snnkit.errors import SnnkitError
    from snnkit.registry import get_registry

    registry = get_registry()
    chosen = metafunc.config.getoption("snnkit_grad")
    dtypes = metafunc.config.getoption("snnkit_dtype") or ["float64"]
    device = metafunc.config.getoption("snnkit_device")
    peers = exact_event_methods(registry)
    problems = [
        f"plugin '{p.name}' ({p.distribution} {p.version}) failed to load: {p.error}"
        for p in registry.failures
    ]
    metafunc.config.stash[_PROBLEMS] = problems
    under_test = metafunc.config.stash.get(_SUBJECT, {})
    params, ids = [], []
    if under_test.get("surrogate") is not None:  # first: before any gradient case
        params.append(SurrogateBody(under_test["surrogate"]))
        ids.append(f"surrogate-body-{under_test['surrogate'].name}")
    names = list(chosen)
    if not chosen:  # "every installed method": what cannot be checked fails
        params += [Unavailable(reason) for reason in problems]
        ids += [f"plugin-{p.name}-failed-to-load" for p in registry.failures]
        clashing = [name for kind, name in registry.clashes if kind == "gradient"]
        names = registry.available("gradient") + clashing
    for name in names:
        try:
            method = registry.gradient(name)
        except SnnkitError as exc:  # unknown, clashing, or its plugin failed: one failing test
            params.append(Unavailable(str(exc)))
            ids.append(f"{name}-unavailable")
            continue
        reason = unsupported(method, **under_test)
        if reason is not None:
            params.append(Unsupported(reason))
            ids.append(f"{name}-unsupported")
            continue
        for planned in plan(method, dtypes, peers):
            params.append((method, planned, device, peers, under_test))
            agreement = "" if planned.peer is None else f"={planned.peer}"
            ids.append(f"{name}-{planned.case}{agreement}-{planned.dtype}")
    metafunc.parametrize("snnkit_case", params, ids=ids)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    problems = config.stash.get(_PROBLEMS, [])
    if problems:
        terminalreporter.section("snnkit plugins")
        for line in problems:
            terminalreporter.write_line(f"warning: {line}; `snnkit plugins` shows details")
