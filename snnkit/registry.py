"""Plugin discovery and the registry of everything plugins provide.

The built-in plugin (``snnkit.builtin``) is always loaded first; then every module in
the ``snnkit`` entry-point group. ``SNNKIT_PLUGINS`` (comma list of entry-point names)
restricts which entry points load; ``SNNKIT_DISABLE_PLUGINS`` excludes some. A plugin
that fails to import or to register is recorded in :attr:`Registry.failures` and
skipped. Two plugins registering the same name is a clash: the name stays listed, and
using it raises an error naming both distributions.
"""

from __future__ import annotations

import functools
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from snnkit import hookspecs
from snnkit.errors import SnnkitError

ENTRY_POINT_GROUP = "snnkit"
BUILTIN = "snnkit.builtin"


@dataclass(frozen=True)
class Plugin:
    """A loaded (or failed) plugin module."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None


@dataclass(frozen=True)
class Entry:
    """One registered object and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: Plugin


@dataclass
class Registry:
    """Everything registered, by kind then name. Build with :func:`load_registry`."""

    plugins: list[Plugin] = field(default_factory=list)
    entries: dict[str, dict[str, Entry]] = field(
        default_factory=lambda: {kind: {} for kind in hookspecs.KINDS}
    )
    clashes: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)

    @property
    def failures(self) -> list[Plugin]:
        return [p for p in self.plugins if p.error is not None]

    def names(self, kind: str) -> list[str]:
        return list(self.entries[kind])

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; unknown or clashing names raise :class:`SnnkitError`."""
        if (kind, name) in self.clashes:
            dists = " and ".join(
                f"'{e.plugin.distribution}' ({e.plugin.module})" for e in self.clashes[kind, name]
            )
            raise SnnkitError(
                f"{kind} '{name}' is registered by both {dists}; uninstall one, or exclude "
                "its plugin with SNNKIT_DISABLE_PLUGINS"
            )
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(self.names(kind)) or "none"
            raise SnnkitError(f"unknown {kind} '{name}'; known: {known}") from None

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).obj

    # typed conveniences -------------------------------------------------------------
    def neuron(self, name: str, **params):
        """A validated neuron spec ``name`` with ``params`` (unknown params are an error)."""
        cls = self.get("neuron", name)
        return cls().replace(**params) if params else cls()

    def surrogate(self, name: str, **params):
        cls = self.get("surrogate", name)
        try:
            return cls(**params)
        except TypeError as exc:
            raise SnnkitError(f"surrogate '{name}': {exc}") from None

    def gradient(self, name: str):
        return self.get("gradient", name)

    def loss(self, name: str):
        return self.get("loss", name)

    def dataset(self, name: str):
        return self.get("dataset", name)

    # registration ---------------------------------------------------------------------
    def _add(self, kind: str, obj: Any, *, plugin: Plugin) -> None:
        name = _name_of(kind, obj)
        entry = Entry(kind, name, obj, plugin)
        if (kind, name) in self.clashes:
            self.clashes[kind, name].append(entry)
        elif name in self.entries[kind]:
            self.clashes[kind, name] = [self.entries[kind][name], entry]
        else:
            self.entries[kind][name] = entry


def _name_of(kind: str, obj: Any) -> str:
    attr = "kind" if kind == "neuron" else "name"
    name = getattr(obj, attr, None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a registered {kind} needs a non-empty string attribute '{attr}'")
    return name


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var, "").strip()
    return {p.strip() for p in raw.split(",") if p.strip()} if raw else None


def _error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_registry(*, entry_points: bool = True) -> Registry:
    """Discover plugins and collect their registrations into a new :class:`Registry`."""
    from snnkit import __version__

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    modules: list[tuple[ModuleType, Plugin]] = []

    import snnkit.builtin as builtin

    modules.append((builtin, Plugin("snnkit", BUILTIN, "snnkit", __version__)))
    if entry_points:
        only, excluded = _env_list("SNNKIT_PLUGINS"), _env_list("SNNKIT_DISABLE_PLUGINS") or set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (only is not None and ep.name not in only) or ep.name in excluded:
                continue
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                registry.plugins.append(Plugin(ep.name, ep.value, dist, version, _error_text(exc)))
                continue
            modules.append((module, Plugin(ep.name, ep.value, dist, version)))

    for module, plugin in modules:
        try:
            pm.register(module, name=plugin.name)
        except Exception as exc:
            registry.plugins.append(_failed(plugin, exc))
            continue
        staged: list[tuple[str, Any]] = []  # applied only if the whole plugin registers cleanly
        try:
            for kind, hook_name in hookspecs.KINDS.items():
                for impl in getattr(pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == plugin.name:
                        impl.function(register=functools.partial(_stage, staged, kind))
        except Exception as exc:
            pm.unregister(name=plugin.name)
            registry.plugins.append(_failed(plugin, exc))
            continue
        registry.plugins.append(plugin)
        for kind, obj in staged:
            registry._add(kind, obj, plugin=plugin)
    return registry


def _stage(staged: list[tuple[str, Any]], kind: str, obj: Any) -> None:
    _name_of(kind, obj)  # a nameless object fails its plugin now, not at lookup
    staged.append((kind, obj))


def _failed(plugin: Plugin, exc: BaseException) -> Plugin:
    return Plugin(plugin.name, plugin.module, plugin.distribution, plugin.version, _error_text(exc))


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def reload_registry() -> Registry:
    """Forget the cached registry and discover plugins again (after installs, env changes)."""
    global _REGISTRY
    _REGISTRY = None
    return get_registry()
