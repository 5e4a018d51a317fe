"""snnkit: spiking neural networks with pluggable neurons and gradient methods.

Public API for users and plugin authors::

    from snnkit import hookimpl, GradientMethod, SpikingLayer, LIF, get_registry
"""

from __future__ import annotations

__version__ = "0.1.0"

# first: sets OpenMP's wait policy before anything loads torch's runtime (snnkit.threads)
from snnkit import threads  # noqa: F401  isort: skip
from snnkit.errors import SnnkitError
from snnkit.hookspecs import API_VERSION, hookimpl
from snnkit.methods import GradientMethod
from snnkit.neurons import IF, LI, LIF, NeuronSpec
from snnkit.registry import get_registry, reload_registry
from snnkit.surrogates import Surrogate

__all__ = [
    "API_VERSION",
    "IF",
    "LI",
    "LIF",
    "GradientMethod",
    "NeuronSpec",
    "SnnkitError",
    "Surrogate",
    "__version__",
    "get_registry",
    "hookimpl",
    "reload_registry",
]


def __getattr__(name: str):
    # the module classes load on first use
    if name in ("SpikingLayer", "Readout", "Network", "LIFState"):
        from snnkit import nn

        return getattr(nn, name)
    raise AttributeError(f"module 'snnkit' has no attribute {name!r}")
