"""Transport-neutral request and response objects shared by the emulator's REST and Tunnel handlers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class Headers(dict):
    """Case-insensitive header mapping (keys stored lower-case)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()):
        super().__init__()
        pairs = items.items() if isinstance(items, Mapping) else items
        for k, v in pairs:
            self[k] = v

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class Request:
    method: str  # upper-case
    path: str  # URL path without query string, percent-decoded, e.g. /projects/p/tables/t
    raw_path: str  # URL path as sent (not decoded), used for signature checks
    query: dict[str, str]  # parameters; a key given without value ("?partitions") maps to ""
    headers: Headers
    body: bytes = b""  # fully read; chunked transfer encoding already decoded
    raw_query: str = ""  # query string as sent (not decoded), used for signature checks


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""  # an iterable is sent with chunked transfer encoding
