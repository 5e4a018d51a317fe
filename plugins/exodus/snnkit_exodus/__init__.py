"""EXODUS (Bauer et al. 2023): BPTT-exact gradients through LIF layers without an autograd graph."""

from snnkit_exodus.method import Exodus, ExodusNeuron

__all__ = ["Exodus", "ExodusNeuron"]
