"""Entry point of the bundled eventprop plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_gradients(register):
    pass  # filled in by the eventprop implementation
