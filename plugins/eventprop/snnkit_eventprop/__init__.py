"""The bundled eventprop plugin (entry point group ``snnkit``)."""
