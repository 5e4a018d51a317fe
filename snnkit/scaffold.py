"""``snnkit plugin new``: write a plugin package that is correct, installable and checked
from its first commit.

The templates are package data, ``snnkit/templates/<kind>/`` over ``templates/common/``
(pyproject with the ``snnkit`` entry point, the hook module, README, a registration test).
A template file ``path.tmpl`` becomes ``path`` with the folder ``PACKAGE`` renamed to the
import package and every ``{{key}}`` filled in; ``_*.tmpl`` files are fragments inserted
into another file (``{{readme}}``). The project is written into a temporary folder and
renamed into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from snnkit.errors import SnnkitError
from snnkit.hookspecs import KINDS
from snnkit.paths import writable_dir
from snnkit.plugin_checks import NAME_MAX, NAME_RULE, NAME_SYNTAX

__all__ = ["SCAFFOLDS", "new_plugin"]


@dataclass(frozen=True)
class Scaffold:
    """What differs between the kinds: the module holding the object, the name it is
    imported by, how the hook registers it (an instance or the class), and the
    ``registered`` test's check of what the entry point registered."""

    module: str
    imported: str
    registered: str
    is_registered: str
    summary: str
    pytest_options: str = ""


SCAFFOLDS = {
    "gradient": Scaffold(
        "method",
        "{C}Method",
        "{C}Method()",
        "isinstance(entry.obj, {C}Method)",
        "LIF/IF neurons with a hand-written reverse-time backward pass",
        " --snnkit-grad {name} --snnkit-dtype float64",
    ),
    "neuron": Scaffold(
        "neuron",
        "{C}Neuron",
        "{C}Neuron",
        "entry.obj is {C}Neuron",
        "A leaky integrate-and-fire neuron",
    ),
    "surrogate": Scaffold(
        "surrogate",
        "{C}Surrogate",
        "{C}Surrogate",
        "entry.obj is {C}Surrogate",
        "A sigmoid-derivative surrogate gradient",
    ),
    "loss": Scaffold(
        "loss",
        "{C}Loss",
        "{C}Loss()",
        "isinstance(entry.obj, {C}Loss)",
        "Cross-entropy of the time-averaged readout voltage",
    ),
    "dataset": Scaffold(
        "dataset",
        "spec",
        "spec()",
        "entry.obj == spec()",
        "A generated two-class spike-timing task",
    ),
}
# classes the templates define ({C} + suffix) must not shadow names they import
_SUFFIXES = ("Method", "Population", "Scan", "Neuron", "State", "Coefficients", "Surrogate", "Loss")
_IMPORTED = {"GradientMethod", "SpikingNeuron", "NeuronSpec", "LIFState", "Surrogate", "Loss"}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def new_plugin(
    name: str, kind: str = "gradient", directory: str | os.PathLike | None = None, registry=None
) -> Path:
    """Write the project for a ``kind`` plugin registering ``name`` into ``directory``
    (default ``./snnkit-NAME``; it must not exist, or be empty) and return its path.
    ``registry``: refuse a name that an installed plugin already registers."""
    if kind not in SCAFFOLDS:
        raise SnnkitError(f"--kind must be one of {', '.join(SCAFFOLDS)}, got {kind!r}")
    if len(name) > NAME_MAX or not NAME_SYNTAX.fullmatch(name):
        raise SnnkitError(f"plugin name {name!r} is not valid: use {NAME_RULE}")
    stem = "".join(word.capitalize() for word in re.split(r"[-_]", name))
    shadowed = sorted({stem + s for s in _SUFFIXES} & _IMPORTED)
    if shadowed:
        raise SnnkitError(
            f"plugin name {name!r} would name a class {shadowed[0]}, as snnkit's own; "
            "choose another name"
        )
    if registry is not None and name in registry.entries[kind]:
        owner = registry.entries[kind][name].plugin.distribution
        raise SnnkitError(
            f"a {kind} named '{name}' is already installed (from {owner}); choose another name"
        )
    distribution = "snnkit-" + name.replace("_", "-")
    project = Path(directory) if directory is not None else Path(distribution)
    if project.exists() and not (project.is_dir() and not any(project.iterdir())):
        raise SnnkitError(f"--dir {project}: exists and is not an empty folder; choose another")
    writable_dir(project.parent, "--dir")
    files = render(kind, _values(name, kind, stem, distribution))
    staging = Path(tempfile.mkdtemp(prefix=".snnkit-new-", dir=project.parent))
    try:
        for path, text in files.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_text(text)
        if project.exists():
            project.rmdir()
        staging.rename(project)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return project


def _values(name: str, kind: str, stem: str, distribution: str) -> dict[str, str]:
    scaffold = SCAFFOLDS[kind]
    filled = {
        field: getattr(scaffold, field).replace("{C}", stem).replace("{name}", name)
        for field in ("module", "imported", "registered", "is_registered", "pytest_options")
    }
    return {
        "name": name,
        "kind": kind,
        "noun": "gradient method" if kind == "gradient" else kind,
        "class": stem,
        "distribution": distribution,
        "package": distribution.replace("-", "_"),
        "hook": KINDS[kind],
        "summary": scaffold.summary,
        "object": filled.pop("imported"),
        **filled,
    }


def render(kind: str, values: dict[str, str]) -> dict[str, str]:
    """``{relative path: text}`` of the project for ``kind`` with ``values`` filled in."""
    root = resources.files("snnkit") / "templates"
    fragments: dict[str, str] = {}
    files: dict[str, str] = {}
    for folder in ("common", kind):  # the kind's files after (and over) the common ones
        for path, template in _walk(root / folder, ""):
            text = _fill(template.read_text(), values)
            if re.match(r"_[a-z]", Path(path).name):  # _readme.md: a fragment
                fragments[Path(path).stem.lstrip("_").removesuffix(".md")] = text.strip()
            else:
                files[path.replace("PACKAGE", values["package"])] = text
    out = {path: _fill(text, fragments) for path, text in files.items()}
    for path, text in out.items():
        left = _PLACEHOLDER.search(text)
        if left:  # a template names a value no scaffold gives: snnkit's bug, not the user's
            raise RuntimeError(f"template {kind}/{path} has no value for {left[0]}")
    return out


def _walk(folder: Traversable, prefix: str):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, path + "/")
        elif entry.name.endswith(".tmpl"):
            yield path.removesuffix(".tmpl"), entry


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), text)
