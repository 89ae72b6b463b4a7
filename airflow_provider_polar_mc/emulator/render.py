"""How the emulator spells things on the wire: XML documents, dates and error bodies.

pyodps parses REST responses with ElementTree and reads JSON documents embedded as element text
(table schemas, result descriptors), so the helpers here build exactly those shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from xml.sax.saxutils import escape, quoteattr

from .errors import EmulatorError
from .http import Response

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all, not even in CDATA.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Raw(str):
    """Already rendered XML, inserted as is."""


def cdata(text: str) -> Raw:
    """Text as CDATA (split where it contains the terminator)."""
    return Raw("<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>")


def is_xml_safe(text: str) -> bool:
    return _XML_INVALID.search(text) is None


def element(tag: str, content: object = None, attrs: Mapping[str, str] | None = None) -> Raw:
    """``<tag attrs>content</tag>``; content is escaped text, Raw XML, a list of Raw, or None (empty)."""
    attr_text = "".join(f" {k}={quoteattr(str(v))}" for k, v in (attrs or {}).items())
    if content is None:
        return Raw(f"<{tag}{attr_text}/>")
    if isinstance(content, Raw):
        inner = str(content)
    elif isinstance(content, (list, tuple)):
        inner = "".join(content)
    else:
        inner = escape(str(content))
    return Raw(f"<{tag}{attr_text}>{inner}</{tag}>")


def children(pairs: Iterable[tuple[str, object]]) -> list[Raw]:
    """Elements for (tag, value) pairs, skipping values that are None."""
    return [element(tag, value) for tag, value in pairs if value is not None]


def xml_document(root: Raw) -> bytes:
    return (XML_HEADER + root).encode("utf-8")


def rfc822(ts: float) -> str:
    """``Fri, 27 Nov 2026 19:52:38 GMT`` as pyodps's ``parse_rfc822`` expects."""
    return formatdate(ts, usegmt=True)


def xml_response(root: Raw, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    h = {"Content-Type": "application/xml"}
    h.update(headers or {})
    return Response(status, h, xml_document(root))


def json_response(obj: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return Response(status, h, json.dumps(obj).encode("utf-8"))


def text_response(text: str, status: int = 200) -> Response:
    return Response(status, {"Content-Type": "text/plain"}, text.encode("utf-8"))


def xml_error(err: EmulatorError, request_id: str, host_id: str = "localhost") -> Response:
    """The REST error document; pyodps needs all of Code, Message, RequestId and HostId to parse it."""
    root = element(
        "Error",
        children([("Code", err.code), ("Message", err.message), ("RequestId", request_id), ("HostId", host_id)]),
    )
    return xml_response(root, err.status)


def json_error(err: EmulatorError, request_id: str) -> Response:
    """The Tunnel error document (pyodps falls back to JSON ``Code``/``Message`` when XML fails)."""
    return json_response({"Code": err.code, "Message": err.message, "RequestId": request_id}, err.status)
