"""Entry point of the bundled eventprop plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_eventprop.method import EventProp

    register(EventProp())


@hookimpl
def snnkit_register_losses(register):
    from snnkit_eventprop.losses import LOSSES

    for loss in LOSSES:
        register(loss)
