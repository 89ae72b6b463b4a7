"""Errors the emulator reports, carrying MaxCompute's HTTP status and error code.

Handlers raise :class:`EmulatorError`; the server renders it in the shape the client expects on that
path (XML for the REST API, JSON for the Tunnel API), so pyodps raises its usual exception class
(``odps.errors.NoSuchObject``, ``ParseError``, ``SecurityException`` ...) chosen by ``code``.
"""

from __future__ import annotations


class EmulatorError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
