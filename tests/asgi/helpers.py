"""Requests parsed from raw bytes by kakehashi.http1, as the engines get them."""

from __future__ import annotations

from kakehashi.http1 import DEFAULT_LIMITS, Request, maybe_parse_request_head


def request(raw: bytes) -> Request:
    """The request whose head is ``raw`` (a complete head, CRLF CRLF included)."""
    parsed = maybe_parse_request_head(raw, 0, DEFAULT_LIMITS)
    assert parsed is not None, raw
    return parsed[0]


def get(target: bytes = b"/", extra: bytes = b"", version: bytes = b"1.1") -> Request:
    return request(b"GET " + target + b" HTTP/" + version + b"\r\nHost: h\r\n" + extra + b"\r\n")


def head(target: bytes = b"/") -> Request:
    return request(b"HEAD " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
