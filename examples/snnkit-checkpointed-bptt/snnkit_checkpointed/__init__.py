"""Example snnkit plugin: BPTT whose autograd graph is kept only at segment boundaries."""

from snnkit_checkpointed.method import CheckpointedBPTT, CheckpointedLayer, CheckpointedNeuron

__all__ = ["CheckpointedBPTT", "CheckpointedLayer", "CheckpointedNeuron"]
