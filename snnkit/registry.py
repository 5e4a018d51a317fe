"""Plugin discovery and the registry of everything plugins provide.

The built-in plugin (``snnkit.builtin``) is always loaded first; then every module in
the ``snnkit`` entry-point group. ``SNNKIT_PLUGINS`` (comma list of entry-point names)
restricts which entry points load; ``SNNKIT_DISABLE_PLUGINS`` excludes some. A plugin
that fails to import, defines a misspelt hook, registers an object of the wrong type or
raises while registering is recorded in :attr:`Registry.failures` with a one-line reason
and contributes nothing. Two plugins registering the same name is a clash: both stay
listed, and only using that name raises an error naming both distributions.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from snnkit import hookspecs
from snnkit.errors import SnnkitError
from snnkit.plugin_checks import PluginError, check_hooks, check_registration

ENTRY_POINT_GROUP = "snnkit"
BUILTIN = "snnkit.builtin"
DEFAULT_GRAD_VAR = "SNNKIT_DEFAULT_GRAD"
DEFAULT_GRADIENTS = ("exodus", "bptt")
"""Without ``--grad`` and ``$SNNKIT_DEFAULT_GRAD``, ``snnkit run`` uses the first of these
that is registered: EXODUS (BPTT's exact gradient from an O(T) reverse scan, faster than
the BPTT oracle and SLAYER in docs/performance.md), else the built-in BPTT oracle."""


@dataclass(frozen=True)
class Plugin:
    """A loaded (or failed) plugin: its entry point, distribution and what it provides."""

    name: str  # the entry point's name ("snnkit" for the built-ins)
    module: str  # what the entry point names
    distribution: str
    version: str  # the distribution's version
    error: str | None = None  # why it failed to load (one line), None if it loaded
    location: str = ""  # the file it was loaded from (a failed one: its package's file)
    hooks: tuple[str, ...] = ()  # the hooks it implements
    provides: tuple[tuple[str, str], ...] = ()  # (kind, name) registered, or attempted


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
        """Every registered name of ``kind``, clashing ones included."""
        return list(self.entries[kind])

    def available(self, kind: str) -> list[str]:
        """The names of ``kind`` that can be used (registered once: no clash)."""
        return [name for name in self.entries[kind] if (kind, name) not in self.clashes]

    def listing(self, kind: str) -> list[Entry]:
        """Every registration of ``kind`` in order, each side of a clash included."""
        out: list[Entry] = []
        for name, entry in self.entries[kind].items():
            out.extend(self.clashes.get((kind, name), [entry]))
        return out

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; an unknown name, a clashing one, or one whose plugin
        failed to load raises :class:`SnnkitError` saying so."""
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
            raise SnnkitError(self._missing(kind, name)) from None

    def _missing(self, kind: str, name: str) -> str:
        for p in self.failures:
            if (kind, name) in p.provides or name in (p.name, _short(p.distribution)):
                return (
                    f"{kind} '{name}' is unavailable: plugin '{p.name}' ({p.distribution} "
                    f"{p.version}) failed to load: {p.error}; `snnkit plugins` shows details"
                )
        known = ", ".join(self.names(kind)) or "none"
        text = f"unknown {kind} '{name}'; known: {known}"
        if self.failures:
            failed = ", ".join(f"'{p.name}'" for p in self.failures)
            text += f" (plugins that failed to load: {failed}; `snnkit plugins` shows why)"
        return text

    def default_gradient(self) -> str:
        """The method ``snnkit run`` uses without ``--grad``: ``$SNNKIT_DEFAULT_GRAD`` if
        set, else the first registered of :data:`DEFAULT_GRADIENTS`."""
        chosen = os.environ.get(DEFAULT_GRAD_VAR, "").strip()
        if not chosen:
            return next(n for n in DEFAULT_GRADIENTS if n in self.entries["gradient"])
        try:
            self.entry("gradient", chosen)
        except SnnkitError as exc:
            raise SnnkitError(f"{DEFAULT_GRAD_VAR}={chosen}: {exc}") from None
        return chosen

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
    def _add(self, kind: str, name: str, obj: Any, *, plugin: Plugin) -> None:
        entry = Entry(kind, name, obj, plugin)
        if (kind, name) in self.clashes:
            self.clashes[kind, name].append(entry)
        elif name in self.entries[kind]:
            self.clashes[kind, name] = [self.entries[kind][name], entry]
        else:
            self.entries[kind][name] = entry


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var, "").strip()
    return {p.strip() for p in raw.split(",") if p.strip()} if raw else None


def _short(distribution: str) -> str:
    """``snnkit-foo`` -> ``foo``: the name a plugin's distribution suggests."""
    name = distribution.lower().replace("_", "-")
    return name.removeprefix("snnkit-")


def _error_text(exc: BaseException) -> str:
    """One line: the exception and the file and line it came from (for an API misuse, the
    :class:`PluginError` message alone)."""
    if isinstance(exc, PluginError):
        return " ".join(str(exc).split())
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    return " ".join(f"{type(exc).__name__}: {exc}{where}".split())


def _location(module_name: str) -> str:
    """Where ``module_name`` lives (its file), without importing it if it is not loaded."""
    module = sys.modules.get(module_name)
    if getattr(module, "__file__", None):
        return module.__file__
    try:
        spec = importlib.util.find_spec(module_name.partition(".")[0])
    except (ImportError, ValueError):
        spec = None
    return spec.origin if spec is not None and spec.origin else "?"


def load_registry(*, entry_points: bool = True) -> Registry:
    """Discover plugins and collect their registrations into a new :class:`Registry`."""
    from snnkit import __version__

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    modules: list[tuple[ModuleType | None, Plugin]] = []  # None: it failed to import

    import snnkit.builtin as builtin

    modules.append((builtin, Plugin("snnkit", BUILTIN, "snnkit", __version__)))
    if entry_points:
        only, excluded = _env_list("SNNKIT_PLUGINS"), _env_list("SNNKIT_DISABLE_PLUGINS") or set()
        # by name: the listing and the order of a clash's sides do not depend on sys.path
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if (only is not None and ep.name not in only) or ep.name in excluded:
                continue
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            plugin = Plugin(ep.name, ep.value, dist, version)
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                modules.append((None, _failed(plugin, exc, location=_location(ep.module))))
                continue
            modules.append((module, plugin))

    for module, plugin in modules:
        if module is None:  # it failed to import
            registry.plugins.append(plugin)
            continue
        plugin = replace(plugin, location=_location(getattr(module, "__name__", plugin.module)))
        staged: list[tuple[str, str, Any]] = []  # applied only if the whole plugin loads
        try:
            plugin = replace(plugin, hooks=tuple(check_hooks(module)))
            pm.register(module, name=plugin.name)
        except Exception as exc:
            registry.plugins.append(_failed(plugin, exc))
            continue
        try:
            for kind, hook_name in hookspecs.KINDS.items():
                for impl in getattr(pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == plugin.name:
                        impl.function(register=functools.partial(_stage, staged, kind))
        except Exception as exc:
            pm.unregister(name=plugin.name)
            registry.plugins.append(_failed(plugin, exc, staged))
            continue
        plugin = replace(plugin, provides=tuple((kind, name) for kind, name, _ in staged))
        registry.plugins.append(plugin)
        for kind, name, obj in staged:
            registry._add(kind, name, obj, plugin=plugin)
    return registry


def _stage(staged: list[tuple[str, str, Any]], kind: str, obj: Any) -> None:
    """The ``register`` callback: check ``obj`` now (a bad one fails its plugin at load
    time, not at first use) and keep it until the plugin's hooks have all run."""
    name = check_registration(kind, obj)
    if any(k == kind and n == name for k, n, _ in staged):
        raise PluginError(f"registers {kind} '{name}' twice")
    staged.append((kind, name, obj))


def _failed(plugin: Plugin, exc: BaseException, staged=(), location: str | None = None) -> Plugin:
    return replace(
        plugin,
        error=_error_text(exc),
        provides=tuple((kind, name) for kind, name, _ in staged),
        location=plugin.location if location is None else location,
    )


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
