"""pytest plugin (entry point ``pytest11``): run the conformance suite against a method.

In a plugin's repository::

    pytest --pyargs snnkit.conformance --snnkit-grad mymethod [--snnkit-dtype float32]

Each (method, case, dtype) becomes one test; skipped cases (the method does not offer
them) are reported as skips. This module imports nothing heavy at load time, because
pytest loads it in every session of every project where snnkit is installed.
"""

from __future__ import annotations


def pytest_addoption(parser):
    group = parser.getgroup("snnkit", "snnkit gradient conformance")
    group.addoption(
        "--snnkit-grad",
        action="append",
        default=[],
        metavar="NAME",
        help="gradient method to check (repeatable); default: every registered one",
    )
    group.addoption(
        "--snnkit-dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="float64 (default) and/or float32",
    )
    group.addoption("--snnkit-device", default="cpu", help="cpu or cuda")


def pytest_generate_tests(metafunc):
    if "snnkit_case" not in metafunc.fixturenames:
        return
    from snnkit.conformance import exact_event_methods, plan
    from snnkit.registry import get_registry

    registry = get_registry()
    names = metafunc.config.getoption("snnkit_grad") or registry.names("gradient")
    dtypes = metafunc.config.getoption("snnkit_dtype") or ["float64"]
    device = metafunc.config.getoption("snnkit_device")
    peers = exact_event_methods(registry)
    params, ids = [], []
    for name in names:
        method = registry.gradient(name)
        for case, dtype in plan(method, dtypes, peers):
            params.append((method, case, dtype, device, peers))
            ids.append(f"{name}-{case.replace(' = ', '=')}-{dtype}")
    metafunc.parametrize("snnkit_case", params, ids=ids)
