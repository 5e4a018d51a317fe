"""The bundled rouser plugin (entry point group ``snnkit``)."""
