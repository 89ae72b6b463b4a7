"""The replica stage: the merged replica built from ``_base`` and ``_log`` in MaxCompute SQL. Imports
only ``core.model``, the shared modules, ``exceptions`` and ``spec``."""
