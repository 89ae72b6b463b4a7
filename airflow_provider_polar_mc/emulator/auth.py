"""Request signatures of the MaxCompute API, checked the way pyodps computes them.

pyodps (``odps/accounts.py``) signs every REST and Tunnel request: it builds a canonical string from
the method, the Content-MD5/Content-Type/Date headers, the ``x-odps-*`` headers and parameters and the
resource (the URL relative to the endpoint, percent-decoded, parameters sorted), then sends
``Authorization: ODPS <access_id>:<base64(HMAC-SHA1(secret, canonical))>``. With a region name
configured it uses the "v4" form instead, whose credential names a derived key. Both are accepted.
The secret is only ever used as an HMAC key here; it is never logged or echoed.

Like MaxCompute, a signed request is also bound in time and to its body:

- its ``Date`` header (which the signature covers) must be within ``max_clock_skew`` seconds (15
  minutes) of the server's clock, so a captured request cannot be replayed later
  (``RequestTimeTooSkewed``, in the form pyodps parses into ``max_interval_date`` / ``expire_date`` /
  ``now_date``);
- its ``Content-MD5`` header (also signed), when sent, must be the MD5 of the body actually received
  (``InvalidDigest``): base64 of the 16-byte digest (RFC 1864), or 32 hex digits as pyodps's storage
  API sends it. :func:`verify_content_md5` checks it once the body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote, urlparse

from .errors import EmulatorError


def canonical_string(method: str, relative_url: str, headers: Mapping[str, str]) -> str:
    """The string pyodps signs, for a request URL given relative to the endpoint (as sent, encoded)."""
    parts = urlparse(unquote(relative_url), allow_fragments=False)
    resource = parts.path
    params: dict[str, str] = {}
    if parts.query:
        params = dict(parse_qsl(parts.query, True))
        resource += "?" + "&".join(k if v == "" else f"{k}={v}" for k, v in sorted(params.items()))

    to_sign: dict[str, str] = {"content-type": "", "content-md5": ""}
    for key, value in headers.items():
        key = key.lower()
        if key in ("content-type", "content-md5") or key.startswith("x-odps-"):
            to_sign[key] = value
    to_sign["date"] = headers.get("Date") or headers.get("date") or ""
    for key, value in params.items():
        if key.startswith("x-odps-"):
            to_sign[key] = value

    lines = [method.upper()]
    for key in sorted(to_sign):
        lines.append(f"{key}:{to_sign[key]}" if key.startswith("x-odps-") else to_sign[key])
    lines.append(resource)
    return "\n".join(lines)


def sign_v2(secret: str, canonical: str) -> str:
    digest = hmac.new(secret.encode(), canonical.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _v4_key(secret: str, date: str, region: str, prefix: str) -> bytes:
    def step(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    return step(step(step(step((prefix + secret).encode(), date), region), "odps"), prefix + "_request")


def sign_v4(secret: str, canonical: str, date: str, region: str, prefix: str = "aliyun_v4") -> str:
    digest = hmac.new(_v4_key(secret, date, region, prefix), canonical.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def authorization_header(access_id: str, secret: str, canonical: str) -> str:
    """What pyodps would send (v2); used by tests and tools that talk to the emulator directly."""
    return f"ODPS {access_id}:{sign_v2(secret, canonical)}"


DEFAULT_MAX_CLOCK_SKEW = 15 * 60.0  # seconds; MaxCompute's window
_HEX_MD5 = re.compile(r"^[0-9A-Fa-f]{32}$")


def _iso_millis(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def request_time(headers: Mapping[str, str]) -> float:
    """The request's ``Date`` header as a POSIX timestamp; AccessDenied when missing or not an HTTP date."""
    text = (headers.get("Date") or headers.get("date") or "").strip()
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise EmulatorError(
            403, "AccessDenied", f"Invalid Date header {text[:64]!r}: a signed request needs an HTTP date (RFC 1123)"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def verify_content_md5(headers: Mapping[str, str], body: bytes) -> None:
    """InvalidDigest unless a ``Content-MD5`` header, if sent, is the MD5 of ``body``."""
    value = headers.get("Content-MD5") or headers.get("content-md5")
    if value is None:
        return
    value = value.strip()
    if _HEX_MD5.match(value):
        expected = bytes.fromhex(value)
    else:
        try:
            expected = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            expected = b""
        if len(expected) != 16:
            raise EmulatorError(
                400, "InvalidDigest", "The Content-MD5 you specified is not valid: use base64 of the 16-byte MD5"
            )
    if not hmac.compare_digest(hashlib.md5(body).digest(), expected):
        raise EmulatorError(400, "InvalidDigest", "The Content-MD5 you specified does not match the request body")


class Authenticator:
    """Accepts requests signed with the one configured access id and key, dated within the clock window."""

    def __init__(
        self,
        access_id: str,
        access_key: str,
        max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
        clock: Callable[[], float] = time.time,
    ):
        self.access_id = access_id
        self._access_key = access_key
        self.max_clock_skew = max_clock_skew
        self._clock = clock

    def __repr__(self) -> str:  # never show the key
        return f"Authenticator(access_id={self.access_id!r})"

    def verify(self, method: str, relative_url: str, headers: Mapping[str, str]) -> None:
        """Raise the error MaxCompute returns unless the request carries a valid signature."""
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if not auth.startswith("ODPS ") or ":" not in auth:
            raise EmulatorError(401, "Unauthorized", "ODPS-0410041:Authorization header is invalid or missing")
        credential, signature = auth[len("ODPS ") :].rsplit(":", 1)
        canonical = canonical_string(method, relative_url, headers)
        parts = credential.split("/")
        if len(parts) == 5 and parts[3] == "odps" and parts[4].endswith("_request"):
            access_id, date, region, _, scope = parts
            expected = sign_v4(self._access_key, canonical, date, region, scope[: -len("_request")])
        else:
            access_id = credential
            expected = sign_v2(self._access_key, canonical)
        if access_id != self.access_id:
            raise EmulatorError(
                401, "Unauthorized", f"ODPS-0410051:Invalid credentials - accessKeyId not found: {access_id}"
            )
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise EmulatorError(
                403, "SignatureNotMatch", "ODPS-0410042:Invalid signature value - User signature does not match"
            )
        self.verify_time(headers)

    def verify_time(self, headers: Mapping[str, str]) -> None:
        """RequestTimeTooSkewed unless the Date header is within ``max_clock_skew`` of the server's clock."""
        sent = request_time(headers)
        now = self._clock()
        if abs(now - sent) <= self.max_clock_skew:
            return
        # pyodps's RequestTimeTooSkewed splits the message on "," and each part on the first ":".
        raise EmulatorError(
            403,
            "RequestTimeTooSkewed",
            f"Request time too skewed: the Date header is {now - sent:+.0f} s off the server clock "
            f"and at most {self.max_clock_skew:.0f} s are allowed (a request cannot be replayed later)"
            f",max_interval_date:{int(self.max_clock_skew * 1000)}"
            f",expire_date:{_iso_millis(sent + self.max_clock_skew)},now_date:{_iso_millis(now)}",
        )
