"""The binlog stage: coordinates, the bounded reader and what it needs (row decoding, DDL parsing,
schema history, filters on change images). Imports only ``core.model``, the shared modules,
``exceptions`` and ``spec``."""
