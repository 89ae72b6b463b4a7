"""Request signatures of the MaxCompute API, checked the way pyodps computes them.

pyodps (``odps/accounts.py``) signs every REST and Tunnel request: it builds a canonical string from
the method, the Content-MD5/Content-Type/Date headers, the ``x-odps-*`` headers and parameters and the
resource (the URL relative to the endpoint, percent-decoded, parameters sorted), then sends
``Authorization: ODPS <access_id>:<base64(HMAC-SHA1(secret, canonical))>``. With a region name
configured it uses the "v4" form instead, whose credential names a derived key. Both are accepted.
The secret is only ever used as an HMAC key here; it is never logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
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


class Authenticator:
    """Accepts requests signed with the one configured access id and key."""

    def __init__(self, access_id: str, access_key: str):
        self.access_id = access_id
        self._access_key = access_key

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
