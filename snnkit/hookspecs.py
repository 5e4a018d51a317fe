"""The plugin API: pluggy hook specifications for project ``snnkit``.

A plugin is a module (found through the ``snnkit`` entry-point group) that implements
any of these hooks. Each hook receives a ``register`` callback; call it once per thing
the plugin provides, in the order you want them listed::

    from snnkit import hookimpl

    @hookimpl
    def snnkit_register_gradients(register):
        register(MyMethod())

A plugin module's other ``snnkit_*`` functions (a misspelt hook, a hook without
``@hookimpl``) and registered objects of the wrong type make the plugin fail to load, with
a one-line reason (``snnkit.plugin_checks``).

``API_VERSION`` changes its major number when a hook's signature or the meaning of a
registered object's interface changes incompatibly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "snnkit"
API_VERSION = "2.0"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[Any], None]


@hookspec
def snnkit_register_neurons(register: Register) -> None:
    """Register neuron spec classes (subclasses of ``snnkit.neurons.NeuronSpec``; name = ``kind``)."""


@hookspec
def snnkit_register_surrogates(register: Register) -> None:
    """Register surrogate classes (subclasses of ``snnkit.surrogates.Surrogate``; name = ``name``)."""


@hookspec
def snnkit_register_gradients(register: Register) -> None:
    """Register gradient methods (``snnkit.methods.GradientMethod`` instances; name = ``name``)."""


@hookspec
def snnkit_register_losses(register: Register) -> None:
    """Register losses (``snnkit.losses.Loss`` instances; name = ``name``)."""


@hookspec
def snnkit_register_datasets(register: Register) -> None:
    """Register datasets (``snnkit.data.DatasetSpec`` instances; name = ``name``)."""


KINDS: dict[str, str] = {
    "neuron": "snnkit_register_neurons",
    "surrogate": "snnkit_register_surrogates",
    "gradient": "snnkit_register_gradients",
    "loss": "snnkit_register_losses",
    "dataset": "snnkit_register_datasets",
}
HOOKS: tuple[str, ...] = tuple(KINDS.values())
"""Every hook name; any other ``snnkit_*`` function in a plugin is a load failure (a typo)."""
