"""EXODUS (Bauer et al. 2023): BPTT-exact gradients through LIF layers without an autograd graph."""

from snnkit_exodus.method import Exodus, ExodusLayer

__all__ = ["Exodus", "ExodusLayer"]
