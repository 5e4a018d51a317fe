"""Entry point of the bundled EXODUS plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_exodus.method import Exodus

    register(Exodus())
