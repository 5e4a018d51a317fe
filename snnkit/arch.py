"""Network architectures from a compact string or a TOML file (``snnkit run --arch``).

The compact grammar is tokens joined by ``-``, applied in order to the dataset's input
(``[C, H, W]`` for cameras, ``[N]`` otherwise; a flat input meets a convolution as one
channel ``[1, N]``)::

    16c5        convolution: 16 output channels, 5x5 kernel (1-D kernel on [C, L] input),
                followed by spiking neurons; options s<stride>, p<padding>: 32c3s2p1
    a2, m2      average / max pooling, window and stride 2
    bn          batch norm of the layer before, between its synapses and its neurons
    d0.2        dropout with probability 0.2 (a fresh mask every step)
    f           flatten (implied before the first dense layer after a convolution)
    128         dense layer of 128 spiking neurons; 128r: with recurrent synapses
    10          the LAST token is the output layer: as many units as the dataset has
                classes (a leaky-integrator readout, or spiking with --readout spiking)

e.g. ``16c5-a2-32c3-a2-128-10``. A TOML file lists the same layers as tables::

    [[layers]]
    type = "conv"        # conv | pool | batchnorm | dropout | flatten | dense
    channels = 16
    kernel = 5           # stride, padding optional
    [[layers]]
    type = "pool"
    kind = "avg"         # avg | max
    size = 2
    [[layers]]
    type = "dense"
    size = 10            # the last dense layer is the output layer

Weights start as N(0, (weight_gain * threshold)^2 / fan_in) like dense layers' (fan_in
of a convolution: in_channels * kernel area).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.errors import SnnkitError
from snnkit.methods import GradientMethod, neuron_tau
from snnkit.neurons import LI, NeuronSpec
from snnkit.nn import Dense, Network, Readout, TimeDistributed, dense_std
from snnkit.surrogates import Surrogate

SYNAPSE_OPTIONS = ("weight_gain", "bias")  # layer options of the synapses, not the neurons


@dataclass(frozen=True)
class Conv:
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0

    def token(self) -> str:
        s = f"{self.channels}c{self.kernel}"
        s += f"s{self.stride}" if self.stride != 1 else ""
        return s + (f"p{self.padding}" if self.padding else "")


@dataclass(frozen=True)
class Pool:
    kind: str  # "avg" or "max"
    size: int

    def token(self) -> str:
        return f"{self.kind[0]}{self.size}"


@dataclass(frozen=True)
class BatchNorm:
    def token(self) -> str:
        return "bn"


@dataclass(frozen=True)
class Dropout:
    p: float

    def token(self) -> str:
        return f"d{self.p:g}"


@dataclass(frozen=True)
class Flatten:
    def token(self) -> str:
        return "f"


@dataclass(frozen=True)
class DenseLayer:
    size: int
    recurrent: bool = False

    def token(self) -> str:
        return f"{self.size}{'r' if self.recurrent else ''}"


Layer = Conv | Pool | BatchNorm | Dropout | Flatten | DenseLayer

_CONV = re.compile(r"^(\d+)c(\d+)(?:s(\d+))?(?:p(\d+))?$")
_POOL = re.compile(r"^([am])(\d+)$")
_DROP = re.compile(r"^d(0(?:\.\d*)?|\.\d+)$")
_DENSE = re.compile(r"^(\d+)(r?)$")
GRAMMAR = "e.g. 16c5-a2-32c3s1p1-bn-m2-d0.2-128r-10 (see docs/guide.md, 'Architectures')"


def _bad(spec: str, token: str, why: str) -> SnnkitError:
    return SnnkitError(f"--arch {spec!r}: token {token!r} {why}; {GRAMMAR}")


def parse(spec: str) -> list[Layer]:
    """The layers of a compact spec (validated: positive sizes, output last)."""
    if not isinstance(spec, str) or not spec.strip():
        raise SnnkitError(f"--arch needs layers, {GRAMMAR}")
    layers: list[Layer] = []
    for token in spec.strip().split("-"):
        token = token.strip()
        if m := _CONV.match(token):
            channels, kernel, stride, padding = (int(g) if g else None for g in m.groups())
            layer: Layer = Conv(channels, kernel, stride or 1, padding or 0)
        elif m := _POOL.match(token):
            layer = Pool("avg" if m.group(1) == "a" else "max", int(m.group(2)))
        elif token == "bn":
            layer = BatchNorm()
        elif m := _DROP.match(token):
            layer = Dropout(float(m.group(1)))
        elif token == "f":
            layer = Flatten()
        elif m := _DENSE.match(token):
            layer = DenseLayer(int(m.group(1)), m.group(2) == "r")
        else:
            raise _bad(spec, token, "is not a layer")
        _check(spec, token, layer)
        layers.append(layer)
    return _validated(spec, layers)


def _check(spec: str, token: str, layer: Layer) -> None:
    numbers = {
        Conv: lambda c: (c.channels, c.kernel, c.stride),
        Pool: lambda p: (p.size,),
        DenseLayer: lambda d: (d.size,),
    }.get(type(layer))
    if numbers is not None and min(numbers(layer)) < 1:
        raise _bad(spec, token, "needs sizes >= 1")
    if isinstance(layer, Dropout) and not 0 <= layer.p < 1:
        raise _bad(spec, token, "needs a probability in [0, 1)")


def _validated(spec: str, layers: list[Layer]) -> list[Layer]:
    if not layers or not isinstance(layers[-1], DenseLayer):
        raise SnnkitError(
            f"--arch {spec!r}: the last layer must be the output, a dense size (the number "
            f"of classes); {GRAMMAR}"
        )
    if layers[-1].recurrent:
        raise _bad(spec, layers[-1].token(), "is the output layer, which cannot be recurrent")
    for before, layer in zip([None, *layers], layers, strict=False):
        if isinstance(layer, BatchNorm) and not isinstance(before, Conv | DenseLayer):
            raise _bad(spec, "bn", "must follow a convolution or a dense layer")
    return layers


def format_layers(layers: list[Layer]) -> str:
    """The compact spec of ``layers`` (what the results store records)."""
    return "-".join(layer.token() for layer in layers)


_TOML_TYPES = {
    "conv": (Conv, ("channels", "kernel", "stride", "padding")),
    "pool": (Pool, ("kind", "size")),
    "batchnorm": (BatchNorm, ()),
    "dropout": (Dropout, ("p",)),
    "flatten": (Flatten, ()),
    "dense": (DenseLayer, ("size", "recurrent")),
}


def load_toml(path: str | Path) -> list[Layer]:
    """The layers of a TOML architecture file (``[[layers]]`` tables with a ``type``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SnnkitError(f"--arch {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SnnkitError(f"--arch {path}: not valid TOML ({exc})") from None
    tables = data.get("layers")
    if not isinstance(tables, list) or not tables:
        raise SnnkitError(f"--arch {path}: needs [[layers]] tables, each with a type")
    layers = []
    for k, table in enumerate(tables, 1):
        kind = table.get("type")
        if kind not in _TOML_TYPES:
            raise SnnkitError(
                f"--arch {path}: layer {k} has type {kind!r}; use one of {', '.join(_TOML_TYPES)}"
            )
        cls, keys = _TOML_TYPES[kind]
        extra = set(table) - {"type", *keys}
        if extra:
            raise SnnkitError(
                f"--arch {path}: layer {k} ({kind}) has no option {', '.join(sorted(extra))}; "
                f"its options: {', '.join(keys) or 'none'}"
            )
        try:
            layer = cls(**{key: table[key] for key in keys if key in table})
        except TypeError as exc:
            raise SnnkitError(f"--arch {path}: layer {k} ({kind}): {exc}") from None
        if isinstance(layer, Pool) and layer.kind not in ("avg", "max"):
            raise SnnkitError(f"--arch {path}: layer {k}: pool kind must be avg or max")
        _check(str(path), f"layer {k}", layer)
        layers.append(layer)
    return _validated(str(path), layers)


def resolve(arch: str) -> list[Layer]:
    """Layers from a compact spec, or from a ``.toml`` file."""
    if arch.strip().endswith(".toml"):
        return load_toml(arch.strip())
    return parse(arch)


def canonical(arch: str) -> str:
    """``arch`` (a spec or a TOML file) as one compact spec."""
    return format_layers(resolve(arch))


def has_convolutions(layers: list[Layer]) -> bool:
    return any(not isinstance(layer, DenseLayer) for layer in layers)


# -- building ------------------------------------------------------------------------------


def _conv(layer: Conv, in_channels: int, dims: int, std: float) -> nn.Module:
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    conv = cls(in_channels, layer.channels, layer.kernel, layer.stride, layer.padding, bias=False)
    nn.init.normal_(conv.weight, 0.0, std)
    return conv


def _pool(layer: Pool, dims: int) -> nn.Module:
    name = ("Avg" if layer.kind == "avg" else "Max") + f"Pool{dims}d"
    return getattr(nn, name)(layer.size)


def build(
    layers: list[Layer],
    method: GradientMethod,
    neuron: NeuronSpec,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    readout: NeuronSpec | None = None,
    surrogate: Surrogate | None = None,
    recurrent: bool = False,
    **options: Any,
) -> Network:
    """A :class:`Network` of ``layers`` on raster input ``[T, B, prod(input_shape)]``.

    Convolution and pooling run through :class:`TimeDistributed`; each convolution and
    hidden dense layer is followed by ``method.neuron`` populations (``recurrent`` makes
    every hidden dense layer recurrent). ``options`` are layer options: ``weight_gain``
    and ``bias`` for the synapses, the rest for the method's neurons.
    """
    method.check(neuron)
    out = layers[-1]
    if out.size != num_classes:
        raise SnnkitError(
            f"--arch {format_layers(layers)!r} ends in {out.size} outputs but the dataset has "
            f"{num_classes} classes; make the last layer {num_classes}"
        )
    gain = options.get("weight_gain", 1.0)
    neuron_options = {k: v for k, v in options.items() if k not in SYNAPSE_OPTIONS}
    theta = neuron.quantities().get("threshold", 1.0)
    shape = tuple(input_shape)
    modules: list[nn.Module] = []
    if has_convolutions(layers[:-1]) and len(shape) == 1:
        shape = (1, shape[0])  # a flat input is one channel for a convolution
    if len(shape) > 1:
        modules.append(TimeDistributed(nn.Unflatten(1, shape)))

    def add(module: TimeDistributed, token: str = "") -> None:
        nonlocal shape
        try:
            with torch.no_grad():
                shape = tuple(module.module(torch.zeros(1, *shape)).shape[1:])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SnnkitError(f"--arch: {token} does not fit its input {shape} ({first})") from None
        modules.append(module)

    def flatten() -> None:
        if len(shape) > 1:
            add(TimeDistributed(nn.Flatten()))

    hidden = layers[:-1]
    for k, layer in enumerate(hidden):
        normed = k + 1 < len(hidden) and isinstance(hidden[k + 1], BatchNorm)
        dims = len(shape) - 1
        if isinstance(layer, Conv):
            if dims not in (1, 2):
                raise SnnkitError(
                    f"--arch: a convolution needs [C, L] or [C, H, W] input, got {shape}"
                )
            fan_in = shape[0] * layer.kernel**dims
            conv = _conv(layer, shape[0], dims, gain * theta / math.sqrt(fan_in))
            add(TimeDistributed(conv), layer.token())
            if normed:
                add(
                    TimeDistributed(
                        nn.BatchNorm2d(shape[0]) if dims == 2 else nn.BatchNorm1d(shape[0])
                    )
                )
            modules.append(method.neuron(neuron, shape, surrogate=surrogate, **neuron_options))
        elif isinstance(layer, Pool):
            if len(shape) < 2:
                raise SnnkitError(f"--arch: pooling {layer.token()} needs a convolution's output")
            if min(shape[1:]) < layer.size:
                raise SnnkitError(f"--arch: {layer.token()} is larger than its input {shape}")
            add(TimeDistributed(_pool(layer, len(shape) - 1)), layer.token())
        elif isinstance(layer, BatchNorm):
            continue  # built with the layer before it, ahead of its neurons
        elif isinstance(layer, Dropout):
            add(TimeDistributed(nn.Dropout(layer.p)))
        elif isinstance(layer, Flatten):
            flatten()
        elif isinstance(layer, DenseLayer):
            flatten()
            rec = recurrent or layer.recurrent
            if normed:
                std = dense_std(neuron, shape[0], gain)
                modules.append(
                    Dense(shape[0], layer.size, bias=options.get("bias", False), std=std)
                )
                modules.append(TimeDistributed(nn.BatchNorm1d(layer.size)))
                neurons = method.neuron(
                    neuron, layer.size, surrogate=surrogate, recurrent=rec, **neuron_options
                )
                modules.append(neurons)
            else:
                modules.append(
                    method.layer(
                        neuron, shape[0], layer.size, recurrent=rec, surrogate=surrogate, **options
                    )
                )
            shape = (layer.size,)
    flatten()
    readout = readout if readout is not None else LI(tau_mem=neuron_tau(neuron), dt=neuron.dt)
    if readout.spiking:
        method.check(readout)
        modules.append(method.layer(readout, shape[0], out.size, surrogate=surrogate, **options))
    else:
        modules.append(Readout(shape[0], out.size, readout))
    return Network(*modules)


__all__ = [
    "BatchNorm",
    "Conv",
    "DenseLayer",
    "Dropout",
    "Flatten",
    "Pool",
    "build",
    "canonical",
    "format_layers",
    "has_convolutions",
    "load_toml",
    "parse",
    "resolve",
]
