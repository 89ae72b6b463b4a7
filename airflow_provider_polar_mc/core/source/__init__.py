"""The source stage: what is read from the source tables themselves (catalog, key ranges, snapshot
reads). Imports only ``core.model``, the shared modules, ``exceptions`` and ``spec``."""
