"""What the emulator checks at the door, before a request reaches the REST or Tunnel handlers.

In the order the server applies them (see ``server._Handler._serve``):

1. **Framing** (request line and headers only): ``Content-Length`` must be one decimal number (repeats
   must agree), ``Transfer-Encoding`` may only be ``chunked`` and not together with a
   ``Content-Length``. Anything else is answered 400 (501 for an unknown transfer coding) and the
   connection is closed, since where the next request would start is unknown.
2. **Admission** (headers only, no body byte read yet): the signature and the ``Date`` window
   (:mod:`.auth`), or the admin token on ``/_emulator``; the project named in the path
   (:data:`PROJECT_NAME`); the announced body size against the limit of the mount
   (:class:`DoorLimits`). A refused request is answered at once; its body is discarded when it is
   small, otherwise the connection is closed after a short, bounded drain.
3. **Body** (:func:`read_body`): read with an idle timeout and the mount's size limit, chunked framing
   checked strictly; a body that stalls, ends early or is malformed is answered 400 promptly.
4. **Integrity**: ``Content-MD5``, when sent, must match the body (:func:`.auth.verify_content_md5`).

Compressed Tunnel bodies are inflated with a bound (``tunnel_codec.decompress_body``), so a small
body cannot expand into unbounded memory.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from .errors import EmulatorError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# MaxCompute project names: letters, digits and '_', starting with a letter. MaxCompute creates new
# projects with 3 to 28 characters; the emulator also serves shorter names (tests use "p") and, like
# its table names, accepts up to 128 characters. Anything else (``/``, ``;``, ``..``, spaces,
# percent-encoded bytes ...) names no project: NoSuchProject.
PROJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")

ADMIN_TOKEN_HEADER = "x-polar-mc-emulator-admin-token"
ADMIN_TOKEN_FILE = "admin-token"  # in the data dir, mode 0600
ADMIN_TOKEN_ENV_VAR = "POLAR_MC_EMULATOR_ADMIN_TOKEN"

# Bodies of refused requests: discarded (keeping the connection) up to this size; above it the
# connection is closed after answering, draining at most LINGER_BYTES for at most LINGER_SECONDS so the
# client can read the answer before the socket goes away.
DISCARD_LIMIT = 64 * KiB
LINGER_BYTES = 4 * MiB
LINGER_SECONDS = 1.0

# Chunked framing: a chunk-size line (with extensions) and a trailer line are at most this long.
MAX_CHUNK_LINE = 4096
MAX_TRAILER_LINES = 64
_CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,15}$")  # < 2**60: no absurd sizes to compare against
_DECIMAL = re.compile(r"^[0-9]{1,19}$")


class RequestTooLarge(EmulatorError):
    def __init__(self, what: str, limit: int):
        super().__init__(413, "RequestEntityTooLarge", f"{what} exceeds the emulator's limit of {limit} bytes")


def malformed(message: str) -> EmulatorError:
    return EmulatorError(400, "InvalidRequest", message)


def incomplete(message: str) -> EmulatorError:
    return EmulatorError(400, "IncompleteBody", message)


@dataclass(frozen=True)
class DoorLimits:
    """Size and time limits of the door; every field has a CLI flag (``polar-mc-emulator --help``)."""

    max_rest_body: int = 16 * MiB  # REST (XML/JSON) bodies: SQL jobs, authorization queries
    max_tunnel_body: int = 1 * GiB  # one Tunnel block as sent (the provider's blocks are tens of MB)
    max_inflated_body: int = 1 * GiB  # one Tunnel block after Content-Encoding is undone
    max_admin_body: int = 64 * KiB  # /_emulator bodies (fault settings)
    body_timeout: float = 60.0  # seconds a request body may stall before it is answered 400
    max_clock_skew: float = 15 * 60.0  # MaxCompute's window for the signed Date header

    def __post_init__(self) -> None:
        for name in ("max_rest_body", "max_tunnel_body", "max_inflated_body", "max_admin_body"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 byte")
        if self.body_timeout <= 0:
            raise ValueError("body_timeout must be positive")
        if self.max_clock_skew <= 0:
            raise ValueError("max_clock_skew must be positive")


_SIZE = re.compile(r"^\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": KiB, "kb": KiB, "kib": KiB, "m": MiB, "mb": MiB, "mib": MiB,
          "g": GiB, "gb": GiB, "gib": GiB}  # fmt: skip


def parse_size(text: str) -> int:
    """``"16MiB"``, ``"1g"``, ``"65536"`` -> bytes (binary units; for the CLI)."""
    match = _SIZE.match(text or "")
    if not match:
        raise ValueError(f"invalid size {text!r}: use bytes or a number with KiB/MiB/GiB")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


# -- project names and ids in paths -------------------------------------------------------------------
def project_in_path(raw_path: str) -> str | None:
    """The project a mount-relative path names (``/projects/{p}/...``, as sent), percent-decoded; None if none."""
    parts = raw_path.split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1] != "projects" or parts[2] == "":
        return None
    return unquote(parts[2])


def check_project(raw_path: str, served: Sequence[str]) -> None:
    """NoSuchProject unless the path names no project or a well-formed one this emulator serves."""
    name = project_in_path(raw_path)
    if name is None:
        return
    if not PROJECT_NAME.match(name) or name.lower() not in served:
        raise EmulatorError(404, "NoSuchProject", f"Project not found - {name!r}")


def check_segments(raw_path: str) -> None:
    """NoSuchObject for a path segment that decodes to a separator, a NUL or a dot segment.

    Routing and handlers see the decoded path; ``a%2Fb`` or ``..`` there would shift or escape segment
    boundaries. No MaxCompute name or id contains these, so such a path names nothing.
    """
    for segment in raw_path.split("/")[1:]:
        text = unquote(segment)
        if text in (".", "..") or any(c in text for c in "/\\\x00"):
            raise EmulatorError(404, "NoSuchObject", f"no such resource: {raw_path[:200]}")


# -- the admin token ----------------------------------------------------------------------------------
def new_admin_token() -> str:
    return secrets.token_urlsafe(32)


def write_admin_token(data_dir: Path, token: str) -> Path:
    """Write the token to ``data_dir/admin-token`` readable by the owner only (created 0600, then renamed)."""
    path = Path(data_dir) / ADMIN_TOKEN_FILE
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def read_admin_token(data_dir: Path) -> str:
    return (Path(data_dir) / ADMIN_TOKEN_FILE).read_text().strip()


# -- framing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Framing:
    chunked: bool = False
    length: int = 0  # Content-Length (0 when chunked or absent)

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def body_framing(content_length: Sequence[str], transfer_encoding: Sequence[str]) -> Framing:
    """How the body is delimited, from every ``Content-Length`` and ``Transfer-Encoding`` header sent."""
    codings = [c.strip().lower() for value in transfer_encoding for c in value.split(",") if c.strip()]
    if transfer_encoding and not codings:
        raise malformed("empty Transfer-Encoding header")
    if codings:
        if codings != ["chunked"]:
            raise EmulatorError(
                501, "NotImplemented", f"Transfer-Encoding {', '.join(codings)!r} is not supported: use chunked"
            )
        if content_length:
            raise malformed("a request must not carry both Content-Length and Transfer-Encoding")
        return Framing(chunked=True)
    values = {v.strip() for value in content_length for v in value.split(",")}
    if not content_length:
        return Framing()
    if len(values) != 1:
        raise malformed(f"conflicting Content-Length headers: {sorted(values)}")
    (value,) = values
    if not _DECIMAL.match(value):
        raise malformed(f"Content-Length {value!r} is not a non-negative decimal number")
    return Framing(length=int(value))


def read_body(rfile: BinaryIO, framing: Framing, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; errors are EmulatorErrors (the caller closes the connection).

    Socket timeouts surface as ``TimeoutError`` from ``rfile``; they are reported as an incomplete body.
    """
    try:
        if framing.chunked:
            return _read_chunked(rfile, limit)
        if framing.length > limit:
            raise RequestTooLarge(f"the request body ({framing.length} bytes)", limit)
        body = rfile.read(framing.length) if framing.length else b""
        if len(body) != framing.length:
            raise incomplete(f"the body ended after {len(body)} of its {framing.length} bytes (Content-Length)")
        return body
    except TimeoutError:
        raise incomplete("the request body stalled before its end") from None


def _read_line(rfile: BinaryIO, what: str) -> bytes:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if not line:
        raise incomplete(f"the connection ended inside a chunked body (expected {what})")
    if len(line) > MAX_CHUNK_LINE:
        raise malformed(f"{what} longer than {MAX_CHUNK_LINE} bytes")
    if not line.endswith(b"\r\n"):
        if line.endswith(b"\n"):
            raise malformed(f"{what} must end with CRLF")
        raise incomplete(f"the connection ended inside a chunked body ({what})")
    return line[:-2]


def _read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = _read_line(rfile, "a chunk-size line")
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.match(size_text):
            raise malformed(f"invalid chunk size {size_text[:32]!r}: expected hexadecimal digits")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_TRAILER_LINES + 1):
                if _read_line(rfile, "a trailer line or the final CRLF") == b"":
                    return b"".join(parts)
            raise malformed(f"more than {MAX_TRAILER_LINES} trailer lines")
        total += size
        if total > limit:
            raise RequestTooLarge(f"the chunked request body (over {total} bytes)", limit)
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise incomplete(f"the connection ended inside a chunk ({len(chunk)} of {size} bytes)")
        parts.append(chunk)
        end = rfile.read(2)
        if end != b"\r\n":
            if len(end) < 2 and not end.startswith(b"\n"):
                raise incomplete("the connection ended after a chunk's data")
            raise malformed("a chunk's data must be followed by CRLF (chunk size does not match its data)")
