"""The bundled slayer plugin (entry point group ``snnkit``)."""
