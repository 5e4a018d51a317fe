"""Entry point of the bundled peers plugin (group ``snnkit``): registers the peer
libraries that are installed (``pip install 'snnkit[peers]'``), without importing them."""

from snnkit import hookimpl
from snnkit_peers import installed_peers


@hookimpl
def snnkit_register_gradients(register):
    for method in installed_peers():
        register(method)
