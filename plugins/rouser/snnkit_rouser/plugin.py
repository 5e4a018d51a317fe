"""Entry point of the bundled rouser plugin (group ``snnkit``)."""

from snnkit import hookimpl


@hookimpl
def snnkit_register_surrogates(register):
    from snnkit_rouser.surrogate import RouserExponential

    register(RouserExponential)


@hookimpl
def snnkit_register_gradients(register):
    from snnkit_rouser.method import Rouser

    register(Rouser())
