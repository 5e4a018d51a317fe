"""Entry point of the bundled SLAYER plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_neurons(register):
    from snnkit_slayer.neuron import SRM

    register(SRM)


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_slayer.method import Slayer

    register(Slayer())
