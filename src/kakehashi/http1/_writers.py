"""Serialising heads and framing bodies for the wire.

No I/O here, and no clock: the caller passes a ``Date`` value in when it wants one.  Every
field this side sends is validated first (``validate_fields``), so CR, LF or NUL from an
application never reaches the wire.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from kakehashi.errors import LocalProtocolError
from kakehashi.http1._abnf import TOKEN
from kakehashi.http1._headers import validate_fields

__all__ = [
    "LAST_CHUNK",
    "encode_chunk",
    "reason_phrase",
    "write_fields",
    "write_request_head",
    "write_response_head",
]

LAST_CHUNK = b"0\r\n\r\n"
_TOKEN_RE = re.compile(TOKEN)
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_REASON_RE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
_REASONS = {int(s): s.phrase.encode("ascii") for s in HTTPStatus}


def reason_phrase(status_code: int) -> bytes:
    """The standard reason phrase (RFC 9110 §15), or ``b""`` for an unregistered code."""
    return _REASONS.get(status_code, b"")


def write_response_head(
    status_code: int,
    headers: list[tuple[bytes, bytes]],
    reason: bytes | None = None,
    http_version: bytes = b"1.1",
) -> bytes:
    """``HTTP/1.1 200 OK`` CRLF, the fields, CRLF.

    Raises:
        LocalProtocolError: a status outside 100-599, or an illegal reason, name or value.
    """
    if not 100 <= status_code <= 599:
        raise LocalProtocolError(f"status code {status_code} is not in 100-599")
    if reason is None:
        reason = _REASONS.get(status_code, b"")
    elif _REASON_RE.fullmatch(reason) is None:
        raise LocalProtocolError(f"illegal reason phrase {reason!r}")
    return b"HTTP/%s %d %s\r\n%s\r\n" % (http_version, status_code, reason, write_fields(headers))


def write_request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], http_version: bytes = b"1.1"
) -> bytes:
    """``GET /path HTTP/1.1`` CRLF, the fields, CRLF.

    Raises:
        LocalProtocolError: an illegal method, target, name or value.
    """
    if _TOKEN_RE.fullmatch(method) is None:
        raise LocalProtocolError(f"illegal method {method!r}")
    if _TARGET_RE.fullmatch(target) is None:
        raise LocalProtocolError(f"illegal request target {target!r}")
    return b"%s %s HTTP/%s\r\n%s\r\n" % (method, target, http_version, write_fields(headers))


def write_fields(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Validated field lines, each ending in CRLF (a head's or a trailer section's).

    Raises:
        LocalProtocolError: an illegal name or value.
    """
    return b"".join([b"%s: %s\r\n" % field for field in validate_fields(headers)])


def encode_chunk(data: bytes) -> bytes:
    """One chunk of the chunked coding; empty data gives nothing (it would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)
