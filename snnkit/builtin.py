"""The core's own plugin: registers built-in neurons, surrogates, losses, datasets and BPTT.

It uses the same hooks as any third-party plugin, so the core has no privileged path.
"""

from __future__ import annotations

from snnkit.hookspecs import hookimpl


@hookimpl
def snnkit_register_neurons(register):
    from snnkit.neurons import BUILTIN_NEURONS

    for cls in BUILTIN_NEURONS:
        register(cls)


@hookimpl
def snnkit_register_surrogates(register):
    from snnkit.surrogates import BUILTIN_SURROGATES

    for cls in BUILTIN_SURROGATES:
        register(cls)


@hookimpl
def snnkit_register_gradients(register):
    from snnkit.reference.bptt import BPTT, DetachedResetBPTT

    register(BPTT())
    register(DetachedResetBPTT())


@hookimpl
def snnkit_register_losses(register):
    from snnkit.losses import BUILTIN_LOSSES

    for loss in BUILTIN_LOSSES:
        register(loss)


@hookimpl
def snnkit_register_datasets(register):
    from snnkit.data import randman_spec, yinyang_spec

    register(yinyang_spec())
    register(randman_spec())
