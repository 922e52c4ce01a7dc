"""Parsing a message head (start line and fields) out of a buffer.

No I/O here.  The fast path matches a complete, valid head with one regular expression and
extracts its fields with a second, both in C; only when that match fails does the slow path
walk the head line by line, to find *which* rule was broken and answer with the right
status.  Both paths apply the same grammar (``_abnf.py``), and the tests check that they
agree on every input.

Invariants: a head is never accepted until its terminating empty line has arrived, and a
partial head is checked against the limits as it grows, so a peer that sends an endless head
is refused at the limit rather than buffered.  A caller that passes a :class:`HeadProgress`
back on every call has each byte of a partial head examined once, so a head fed one byte at a
time costs linear work, not one rescan of the whole head per byte.  A caller that passes a
:class:`HeadCache` has a head it saw before (the same bytes, under the same limits) given
back without parsing it again: clients repeat their heads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kakehashi.errors import RemoteProtocolError
from kakehashi.http1._abnf import (
    CTL_BYTES,
    FIELD_LINE_RE,
    FRAMING_NAMES,
    FRAMING_SPELLINGS,
    KNOWN_NAMES,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    TOKEN,
)
from kakehashi.http1._events import Framing, Limits, Request, Response
from kakehashi.http1._framing import request_info, response_info
from kakehashi.http1._headers import Headers

__all__ = [
    "HeadCache",
    "HeadProgress",
    "maybe_parse_request_head",
    "maybe_parse_response_head",
    "parse_fields",
]

_TOKEN_RE = re.compile(TOKEN)
_SUPPORTED_VERSIONS = (b"1.0", b"1.1")


# RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.  A
# regular expression skips them in C, because a peer may send thousands and the buffer is
# rescanned on every call while the head is incomplete.
_EMPTY_LINES_RE = re.compile(rb"(?:\r\n)*")
# The lower-cased name of each spelling of a framing field the fast path knows.
_LOWER = {spelling: spelling.lower() for spelling in FRAMING_SPELLINGS}


# A request head parsed before, by its bytes from the request line to the last field: what
# Request is made of (method, target, headers, version, framing, content length, keep-alive,
# expect-continue).  Its Headers object is shared by every request made from it; nothing on
# the server changes a request once parsed.
_Parsed = tuple[bytes, bytes, Headers, bytes, Framing, int | None, bool, bool]
# Heads of at most this many bytes are kept, at most this many of them: 4.1 MiB when all are
# 1.8 KiB heads of 99 fields (tracemalloc), the most the parsed fields can take.
_MAX_CACHED_HEAD = 2048
_MAX_CACHED_HEADS = 256


class HeadCache:
    """Request heads parsed before, for :func:`maybe_parse_request_head`.

    A client repeats its heads: the same method, target and fields on request after request
    of a keep-alive connection (an API client, a health check, a page's assets).  Parsing
    one again gives the same request, so a head seen before is looked up by its bytes
    instead.  Only heads that parsed without error are kept, each as the parser made it
    under the ``limits`` given with this cache (one cache per limits).  Bounded by
    ``_MAX_CACHED_HEAD`` and ``_MAX_CACHED_HEADS``; when full it is emptied, so heads that
    come often are kept again and one-off heads cannot hold it.  Safe to share between
    threads (each step is one dict operation).
    """

    __slots__ = ("limits", "parsed")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parsed: dict[bytes, _Parsed] = {}

    def keep(self, head: bytes, parsed: _Parsed) -> None:
        if len(head) <= _MAX_CACHED_HEAD:
            if len(self.parsed) >= _MAX_CACHED_HEADS:
                self.parsed.clear()
            self.parsed[head] = parsed


@dataclass(slots=True)
class HeadProgress:
    """What earlier calls learned about an incomplete head at the front of a buffer.

    Offsets count from the head's first byte; the buffer must only have grown at its end since
    (a new head needs a new HeadProgress).  ``checked`` bytes were examined and complete no
    head and break no rule yet; the request line starts at ``line_start``, past empty lines,
    and ``line_done`` says it has its LF and was checked.
    """

    checked: int = 0
    line_start: int = 0
    line_done: bool = False


def maybe_parse_request_head(
    buf: bytes | bytearray,
    pos: int,
    limits: Limits,
    progress: HeadProgress | None = None,
    cache: HeadCache | None = None,
) -> tuple[Request, int] | None:
    """Parse one request head starting at ``buf[pos]``.

    ``progress``, if given, is read to skip bytes examined by earlier calls and updated when
    the head is still incomplete.  ``cache``, if given (made with these ``limits``), gives a
    head seen before without parsing it again, and keeps this one.

    Returns:
        ``(request, end)`` where ``end`` is the offset just past the head, or None if the head
        is not complete yet (and within the limits so far).

    Raises:
        RemoteProtocolError: the head is malformed (400), too long (414, 431), of an
            unsupported version (505), or its framing is refused (400, 413, 417, 501).
    """
    start = pos
    if progress is not None:
        pos += progress.line_start
    if buf.startswith(b"\r\n", pos):
        # The skipped lines count against max_header_bytes (from ``start``), so an endless
        # stream of CRLFs is refused rather than buffered.
        skipped = _EMPTY_LINES_RE.match(buf, pos)
        assert skipped is not None  # a starred pattern always matches
        pos = skipped.end()
    if progress is None or start + progress.checked - 3 <= pos:
        end = buf.find(b"\r\n\r\n", pos)
    else:  # the end of what was checked may hold the start of the blank line
        end = buf.find(b"\r\n\r\n", start + progress.checked - 3)
    if end < 0 or end + 4 - start > limits.max_header_bytes:
        # Raises 431 itself for a complete head over the limit: the buffer is longer still.
        if progress is None:
            _check_partial_head(buf, pos, start, limits, HeadProgress())
        else:
            _check_partial_head(buf, pos, start, limits, progress)
            progress.checked, progress.line_start = len(buf) - start, pos - start
        return None
    if cache is None or cache.limits is not limits:  # a cache holds what its limits allowed
        return Request(*_parse_request(buf, pos, end, limits)), end + 4
    head = bytes(buf[pos:end])
    parsed = cache.parsed.get(head)
    if parsed is None:
        parsed = _parse_request(buf, pos, end, limits)
        cache.keep(head, parsed)
    return Request(*parsed), end + 4


def _parse_request(buf: bytes | bytearray, pos: int, end: int, limits: Limits) -> _Parsed:
    """What the complete head from ``buf[pos]`` to the blank line at ``end`` makes a
    Request of; raises as :func:`maybe_parse_request_head` says."""
    line_end = buf.find(b"\r\n", pos)
    m = REQUEST_LINE_RE.fullmatch(buf, pos, line_end + 2)
    if m is None or line_end + 2 - pos > limits.max_request_line_bytes:
        _check_request_line(bytes(buf[pos : line_end + 2]), limits)
    assert m is not None  # _check_request_line raised otherwise
    method, target, major, minor = m.groups()
    version, fields, found = _version_and_fields(major, minor, buf, line_end, end, limits)
    info = request_info(version, found, limits)
    return (
        method,
        target,
        Headers(fields),
        version,
        info.framing,
        info.content_length,
        info.keep_alive,
        info.expect_continue,
    )


def _version_and_fields(
    major: bytes, minor: bytes, buf: bytes | bytearray, line_end: int, end: int, limits: Limits
) -> tuple[bytes, list[tuple[bytes, bytes]], dict[bytes, list[bytes]]]:
    """The checked version, and the fields between the start line and the blank line."""
    version = major + b"." + minor
    if version not in _SUPPORTED_VERSIONS:
        raise _version_error(version)
    if line_end == end:
        return version, [], {}
    fields, found = split_fields(bytes(buf[line_end + 2 : end]), limits)
    return version, fields, found


def split_fields(
    block: bytes, limits: Limits
) -> tuple[list[tuple[bytes, bytes]], dict[bytes, list[bytes]]]:
    """Split a field block (lines joined by CRLF, no final CRLF) into fields.

    Returns:
        The ``(name, value)`` pairs, and the framing fields by lower-cased name.

    The fast path leans on C-level bytes methods: split on CRLF, partition on the first colon,
    strip OWS, then check every byte at once (no CTL, no bare CR or LF) and every name at once
    against a constant set of well-known, valid spellings.  A head with any other name, a
    repeated name or a broken line goes through :func:`parse_fields`, line by line.
    """
    lines = block.split(b"\r\n")
    crlf = len(lines) - 1
    if len(lines) > limits.max_fields:
        if block.count(b"\r") != crlf or block.count(b"\n") != crlf:
            raise RemoteProtocolError("header lines must end with CRLF, with no bare CR or LF")
        raise RemoteProtocolError(f"more than {limits.max_fields} header fields", 431)
    # A loop, not comprehensions (on Python 3.11 each one is a function made per call).
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon:
            append((name, value.strip(b" \t")))
    by_name = dict(fields)
    if (
        len(fields) != len(lines)  # a line without a colon
        # Any CTL but the CRLFs split on (so no bare CR or LF either).
        or len(block.translate(None, CTL_BYTES)) != len(block) - 2 * crlf
        or len(by_name) != len(fields)  # a repeated name
        or not KNOWN_NAMES.issuperset(by_name)  # a name we have not seen valid
    ):
        if block.count(b"\r") != crlf or block.count(b"\n") != crlf:
            # Checked first, as for a partial head (_check_line_endings), so that the status
            # does not depend on how the head arrived.
            raise RemoteProtocolError("header lines must end with CRLF, with no bare CR or LF")
        fields = parse_fields(block + b"\r\n", limits)
        found: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            lname = name.lower()
            if lname in FRAMING_NAMES:
                found.setdefault(lname, []).append(value)
        return fields, found
    if len(block) > limits.max_field_bytes:  # only then can one line be over the limit
        _check_line_lengths(lines, limits)
    framing = FRAMING_SPELLINGS.intersection(by_name)
    if len(framing) == 1:  # the usual request: Host alone
        (spelling,) = framing
        return fields, {_LOWER[spelling]: [by_name[spelling]]}
    found = {}
    for spelling in framing:
        found.setdefault(_LOWER[spelling], []).append(by_name[spelling])
    return fields, found


def _version_error(version: bytes) -> RemoteProtocolError:
    # The HTTP/2 preface (RFC 9113 §3.4) parses as "PRI * HTTP/2.0": say so plainly.
    if version.startswith(b"2") or version.startswith(b"3"):
        return RemoteProtocolError(
            f"HTTP/{version.decode()} is not supported here; speak HTTP/1.1", 505
        )
    return RemoteProtocolError(f"HTTP version {version.decode()} not supported", 505)


def _check_line_lengths(lines: list[bytes], limits: Limits) -> None:
    if max(map(len, lines)) > limits.max_field_bytes:
        raise RemoteProtocolError("header field too large", 431)


def _check_partial_head(
    buf: bytes | bytearray, pos: int, start: int, limits: Limits, progress: HeadProgress
) -> None:
    """Refuse an incomplete (or oversized) head as early as a rule is sure to be broken.

    Each check looks only at bytes that every later arrival keeps, so a head fed in pieces
    of any size is refused with the same status as the whole head: a bad method or request
    line first, then a bare CR or LF within the head limit, then the size limits.  Bytes
    that ``progress`` says were checked are not looked at again; it records the line check.
    """
    stop = min(len(buf), start + limits.max_header_bytes)
    if progress.line_done:
        # A CR at the end of what was checked may pair with an LF that arrived since.
        lo = max(pos, start + progress.checked)
        _check_line_endings(buf, lo - (buf[lo - 1 : lo] == b"\r"), stop)
    else:
        line_end = buf.find(b"\n", max(pos, start + progress.checked))
        if line_end < 0:
            _check_line_prefix(bytes(buf[pos : pos + 32]))
            if len(buf) - pos > limits.max_request_line_bytes:
                raise RemoteProtocolError("request line too long", 414)
        else:
            _check_request_line(bytes(buf[pos : line_end + 1]), limits)
            _check_line_endings(buf, pos, stop)
            progress.line_done = True
    if len(buf) - start > limits.max_header_bytes:
        raise RemoteProtocolError("request head too large", 431)


def _check_line_endings(buf: bytes | bytearray, pos: int, stop: int) -> None:
    # RFC 9112 §2.2: a bare CR is invalid and we do not take a bare LF as a line end, so a
    # head that holds either can never complete; refuse it now instead of waiting for 431.
    # A CR at ``stop`` may yet be followed by its LF.
    crlf = buf.count(b"\r\n", pos, stop)
    bare_cr = buf.count(b"\r", pos, stop) - crlf - (buf[stop - 1 : stop] == b"\r")
    if bare_cr or buf.count(b"\n", pos, stop) != crlf:
        raise RemoteProtocolError("header lines must end with CRLF, with no bare CR or LF")


def _check_line_prefix(prefix: bytes) -> None:
    """A request line must start with a method token then a space; refuse early otherwise."""
    method = prefix.split(b" ", 1)[0]
    if method and method != b"\r" and _TOKEN_RE.fullmatch(method) is None:
        raise RemoteProtocolError("malformed request line")


def _check_request_line(line: bytes, limits: Limits) -> None:
    """Raise the error for a request line the fast path refused (or a partial head's line)."""
    _check_line_prefix(line[:32])  # a bad method is 400 at any length, as when partial
    if len(line) > limits.max_request_line_bytes:
        raise RemoteProtocolError("request line too long", 414)
    m = REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        if not line.endswith(b"\r\n"):
            raise RemoteProtocolError("request line must end with CRLF")
        raise RemoteProtocolError("malformed request line")
    version = m.group(3) + b"." + m.group(4)
    if version not in _SUPPORTED_VERSIONS:
        raise _version_error(version)


def parse_fields(block: bytes, limits: Limits) -> list[tuple[bytes, bytes]]:
    """Parse CRLF-terminated field lines one by one (trailers, and the slow path for heads).

    Raises:
        RemoteProtocolError: 400 for a malformed line, 431 for a line or count over limits.
    """
    fields: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(block):
        nl = block.find(b"\n", pos)
        line = block[pos : nl + 1] if nl >= 0 else block[pos:]
        pos += len(line)
        if len(line) > limits.max_field_bytes + 2:  # the limit is for the line without CRLF
            raise RemoteProtocolError("header field too large", 431)
        m = FIELD_LINE_RE.fullmatch(line)
        if m is None:
            raise RemoteProtocolError(_field_problem(line))
        fields.append((m.group(1), m.group(2) or b""))
        if len(fields) > limits.max_fields:
            raise RemoteProtocolError(f"more than {limits.max_fields} header fields", 431)
    return fields


def _field_problem(line: bytes) -> str:
    """Name the rule a field line breaks, for the error message."""
    if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
        return "header line must end with CRLF, with no bare CR or LF"
    if line[:1] in (b" ", b"\t"):
        return "obsolete line folding is not accepted"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "header line without a colon"
    if name.rstrip(b" \t") != name:
        return "whitespace between header name and colon"
    if _TOKEN_RE.fullmatch(name) is None:
        return f"invalid header name {name!r}"
    return "invalid byte in header value"


def maybe_parse_response_head(
    buf: bytes | bytearray,
    pos: int,
    request_method: bytes,
    limits: Limits,
    progress: HeadProgress | None = None,
) -> tuple[Response, int] | None:
    """Parse one response head (final or 1xx) at ``buf[pos]``, for the client.

    ``progress`` works as for :func:`maybe_parse_request_head`.

    Returns:
        ``(response, end)`` or None if incomplete.  A 1xx comes back as a Response with
        ``status_code < 200``; the caller turns it into an InformationalResponse.

    Raises:
        RemoteProtocolError: malformed, too large, or ambiguous framing.
    """
    end = buf.find(b"\r\n\r\n", max(pos, pos + (progress.checked if progress else 0) - 3))
    if end < 0 or end + 4 - pos > limits.max_header_bytes:
        if end >= 0 or len(buf) - pos > limits.max_header_bytes:
            raise RemoteProtocolError("response head too large", 431)
        if progress is not None:
            progress.checked = len(buf) - pos
        return None
    line_end = buf.find(b"\r\n", pos)
    m = STATUS_LINE_RE.fullmatch(buf, pos, line_end + 2)
    if m is None:
        line = bytes(buf[pos:line_end])
        raise RemoteProtocolError(f"malformed status line {line[:80]!r}")
    major, minor, status, reason = m.groups()
    version, fields, found = _version_and_fields(major, minor, buf, line_end, end, limits)
    code = int(status)
    info = response_info(request_method, code, version, found)
    response = Response(
        code,
        Headers(fields),
        reason or b"",
        version,
        info.framing,
        info.content_length,
        info.keep_alive,
    )
    return response, end + 4
