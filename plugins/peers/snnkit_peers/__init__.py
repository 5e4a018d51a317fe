"""Peer libraries' LIF neurons (snntorch, norse, spikingjelly, sinabs) as snnkit gradient
methods, so `snnkit bench`, `snnkit conformance` and the leaderboard compare them with
snnkit's methods on equal terms. One adapter per library; none of them is a dependency of
snnkit (extra ``snnkit[peers]``). Only installed libraries are registered."""

from __future__ import annotations

import importlib
import importlib.util

# method name -> (the library's top-level module, adapter "module:class")
PEERS: dict[str, tuple[str, str]] = {
    "snntorch": ("snntorch", "snnkit_peers.snntorch_lif:Snntorch"),
    "norse": ("norse", "snnkit_peers.norse_lif:Norse"),
    "spikingjelly": ("spikingjelly", "snnkit_peers.spikingjelly_lif:Spikingjelly"),
    "sinabs": ("sinabs", "snnkit_peers.sinabs_lif:Sinabs"),
}


def missing_peers() -> dict[str, str]:
    """Peer methods that are not registered, with the reason (the library is not installed)."""
    return {
        name: f"{module} is not installed (pip install 'snnkit[peers]')"
        for name, (module, _) in PEERS.items()
        if importlib.util.find_spec(module) is None
    }


def installed_peers() -> list:
    """One method instance per installed peer library (the library itself is imported only
    when a neuron is built)."""
    missing = missing_peers()
    out = []
    for name, (_, target) in PEERS.items():
        if name in missing:
            continue
        module, cls = target.split(":")
        out.append(getattr(importlib.import_module(module), cls)())
    return out


__all__ = ["PEERS", "installed_peers", "missing_peers"]
