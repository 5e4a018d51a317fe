"""The bundled Rouser plugin: trainable per-neuron thresholds (arXiv 2407.19566)."""

from snnkit_rouser.method import Rouser, RouserNeuron
from snnkit_rouser.surrogate import RouserExponential

__all__ = ["Rouser", "RouserExponential", "RouserNeuron"]
