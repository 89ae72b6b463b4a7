"""The destination stage: MaxCompute through pyodps (DDL and SQL, Tunnel uploads, the checkpoint
store, schema migration). Imports only ``core.model``, the shared modules, ``exceptions`` and ``spec``."""
