"""What a plugin must get right before anything it registers is used.

:func:`check_hooks` rejects ``snnkit_*`` functions that pluggy would silently ignore (a
misspelt hook name, a hook without ``@hookimpl``); :func:`check_registration` checks one
registered object for its kind and returns its name. Both raise :class:`PluginError`,
whose one-line message the registry records as that plugin's load failure.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Mapping
from typing import Any

from snnkit import hookspecs

NAME_SYNTAX = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
NAME_MAX = 40
NAME_RULE = (
    "a lowercase letter, then lowercase letters and digits in words joined by single "
    f"'-' or '_', at most {NAME_MAX} characters (e.g. my-method, fast_sigmoid)"
)


class PluginError(TypeError):
    """A plugin broke the plugin API; the message says what and how to fix it."""


def check_hooks(plugin: object) -> list[str]:
    """The hooks ``plugin`` (a module) implements, after checking every ``snnkit_*`` function
    in it is a correctly spelt hook marked ``@hookimpl``."""
    hooks = []
    marker = f"{hookspecs.PROJECT}_impl"  # the attribute pluggy's HookimplMarker sets
    for attr in dir(plugin):
        value = getattr(plugin, attr, None)
        if not attr.startswith("snnkit_") or not (
            inspect.isroutine(value) or hasattr(value, marker)
        ):
            continue
        if attr not in hookspecs.HOOKS:
            close = difflib.get_close_matches(attr, hookspecs.HOOKS, n=1)
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else f"; the hooks are {', '.join(hookspecs.HOOKS)}"
            )
            raise PluginError(f"{attr} is not a snnkit hook{hint}")
        if not hasattr(value, marker):
            raise PluginError(f"{attr} is not marked as a hook; decorate it with @snnkit.hookimpl")
        hooks.append(attr)
    return sorted(hooks, key=hookspecs.HOOKS.index)


def check_name(kind: str, name: Any, attr: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise PluginError(f"a registered {kind} needs a non-empty string attribute '{attr}'")
    if len(name) > NAME_MAX or not NAME_SYNTAX.fullmatch(name):
        raise PluginError(f"{kind} name {name!r} is not valid: use {NAME_RULE}")
    return name


def check_registration(kind: str, obj: Any) -> str:
    """The registry name of ``obj`` registered as a ``kind``; raises :class:`PluginError` if
    it is not what that kind's hook takes (see docs/plugin-api.md)."""
    return _CHECKS[kind](obj)


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    return f"a {type(obj).__name__} instance"


def _class_of(base: type, kind: str, attr: str):
    """Neurons and surrogates are registered as classes: parameter records users instantiate."""

    def check(obj: Any) -> str:
        if not (isinstance(obj, type) and issubclass(obj, base)):
            fix = (
                f"register({type(obj).__name__})"
                if isinstance(obj, base)
                else f"a {base.__name__} subclass"
            )
            raise PluginError(
                f"{kind} hooks register {base.__name__} subclasses (users instantiate them "
                f"with their options); got {_describe(obj)}: use {fix}"
            )
        return check_name(kind, getattr(obj, attr, None), attr)

    return check


def _instance_of(base: type, kind: str):
    """Methods, losses and datasets are registered as ready objects (instances)."""

    def check(obj: Any) -> str:
        if isinstance(obj, type) and issubclass(obj, base):
            raise PluginError(
                f"{kind} hooks register {base.__name__} instances, got the class "
                f"{obj.__name__}: use register({obj.__name__}())"
            )
        if not isinstance(obj, base):
            raise PluginError(
                f"{kind} hooks register {base.__name__} instances, got {_describe(obj)}"
            )
        return check_name(kind, getattr(obj, "name", None))

    return check


def _neuron(obj: Any) -> str:
    from snnkit.neurons import NeuronSpec

    return _class_of(NeuronSpec, "neuron", "kind")(obj)


def _surrogate(obj: Any) -> str:
    from snnkit.surrogates import Surrogate

    return _class_of(Surrogate, "surrogate", "name")(obj)


def _loss(obj: Any) -> str:
    from snnkit.losses import Loss

    return _instance_of(Loss, "loss")(obj)


def _dataset(obj: Any) -> str:
    from snnkit.data import DatasetSpec

    return _instance_of(DatasetSpec, "dataset")(obj)


def _gradient(obj: Any) -> str:
    from snnkit.methods import ORACLES, GradientMethod

    name = _instance_of(GradientMethod, "gradient")(obj)

    def bad(attr: str, want: str) -> PluginError:
        return PluginError(
            f"gradient '{name}': {attr} must be {want}, got {getattr(obj, attr, None)!r}"
        )

    for attr in ("summary", "version"):
        if not isinstance(getattr(obj, attr, None), str) or not getattr(obj, attr):
            raise bad(attr, "a non-empty string")
    if obj.representation not in ("raster", "events"):
        raise bad("representation", "'raster' or 'events'")
    if obj.oracle not in ORACLES:
        raise bad("oracle", " or ".join(repr(o) for o in ORACLES))
    if not isinstance(obj.exact, bool):
        raise bad("exact", "True or False")
    if not obj.exact and not (isinstance(obj.approximation, str) and obj.approximation):
        raise bad("approximation", "a non-empty string saying what is approximated (exact = False)")
    for attr in ("devices", "neurons"):
        value = getattr(obj, attr, None)
        if not (
            isinstance(value, tuple | list) and value and all(isinstance(v, str) for v in value)
        ):
            raise bad(attr, "a non-empty tuple of strings")
    _check_run_defaults(name, obj.run_defaults)
    return name


def _check_run_defaults(name: str, defaults: Any, where: str = "run_defaults") -> None:
    """Keys are :class:`snnkit.train.RunConfig` fields, plus ``events``: the same for event
    methods (the dataset recipes' layout), and at the top ``datasets``: per dataset name,
    the same layout again (settings for that dataset only)."""
    from dataclasses import fields

    from snnkit.train import RunConfig

    if not isinstance(defaults, Mapping):
        raise PluginError(f"gradient '{name}': {where} must be a mapping, got {defaults!r}")
    known = {f.name for f in fields(RunConfig)}
    nested = {"events"} if not where.endswith("['events']") else set()
    top = where == "run_defaults"
    unknown = sorted(set(defaults) - known - nested - ({"datasets"} if top else set()))
    if unknown:
        raise PluginError(
            f"gradient '{name}': {where} has no setting {', '.join(map(repr, unknown))}; "
            "its keys are fields of snnkit.train.RunConfig (and 'events' for event recipes, "
            "'datasets' for settings per dataset)"
        )
    if "events" in defaults and nested:
        _check_run_defaults(name, defaults["events"], f"{where}['events']")
    if top and "datasets" in defaults:
        per_dataset = defaults["datasets"]
        if not isinstance(per_dataset, Mapping):
            raise PluginError(
                f"gradient '{name}': run_defaults['datasets'] must map dataset names to "
                f"settings, got {per_dataset!r}"
            )
        for dataset, settings in per_dataset.items():
            _check_run_defaults(name, settings, f"run_defaults['datasets'][{dataset!r}]")


_CHECKS = {
    "neuron": _neuron,
    "surrogate": _surrogate,
    "gradient": _gradient,
    "loss": _loss,
    "dataset": _dataset,
}
