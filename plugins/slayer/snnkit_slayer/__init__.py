"""The bundled SLAYER plugin: spike-response-model layers, gradient by temporal correlation.

Shrestha & Orchard, NeurIPS 2018; docs/methods/slayer.md. ``--grad slayer``, ``--neuron srm``.
"""

from snnkit_slayer.method import Slayer
from snnkit_slayer.neuron import SRM

__all__ = ["SRM", "Slayer"]
