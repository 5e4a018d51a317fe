"""Entry point of the bundled eest plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_eest.method import EEST

    register(EEST())


@hookimpl
def snnkit_register_losses(register):
    from snnkit_eest.losses import LOSSES

    for loss in LOSSES:
        register(loss)
