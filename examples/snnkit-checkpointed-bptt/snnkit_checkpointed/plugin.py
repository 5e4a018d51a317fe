"""The plugin module named by the entry point: it only registers what the package provides."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_checkpointed.method import CheckpointedBPTT

    register(CheckpointedBPTT())
