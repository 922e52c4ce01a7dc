"""The events of an HTTP/1.1 exchange, as plain dataclasses, and the limits that bound them.

No I/O here.  A message is a head event (:class:`Request`, :class:`Response` or
:class:`InformationalResponse`), then zero or more :class:`Data`, then one
:class:`EndOfMessage`.  Events are created by the parser or by the user and never changed
after; they use ``slots`` without ``frozen`` because a frozen dataclass costs a
``object.__setattr__`` per field, and a Request is built once per request on the server's
hot path.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kakehashi.http1._headers import Headers

__all__ = [
    "DEFAULT_LIMITS",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Framing",
    "InformationalResponse",
    "Limits",
    "Request",
    "Response",
    "Signal",
]


class Signal(enum.Enum):
    """What :meth:`Connection.next_event` returns when it has no event yet."""

    NEED_DATA = "need data"  # feed more bytes with receive_data()
    PAUSED = "paused"  # this message is done; call start_next_cycle() for the next one


class Framing(enum.Enum):
    """How a message body is delimited (RFC 9112 §6.3)."""

    NONE = "none"  # no body at all
    LENGTH = "length"  # exactly `content_length` bytes
    CHUNKED = "chunked"  # chunked transfer coding, ends with a zero chunk and trailers
    CLOSE = "close"  # until the connection closes (responses only)


@dataclass(slots=True)
class Limits:
    """Bounds on what a peer may send; each breach has its own status code.

    Defaults follow gunicorn and waitress where they agree, and say why where they differ.
    The request line is counted with its CRLF; a field or chunk-size line without it.
    """

    # RFC 9112 §3: a server that receives a request-target longer than it wishes to parse
    # answers 414.  8 KiB: the common web-server default (nginx, gunicorn's 4094 is too
    # tight for long query strings).
    max_request_line_bytes: int = 8192
    # One field line, name and value: 431.  gunicorn's limit_request_field_size.
    max_field_bytes: int = 8190
    # The whole head, start line included: 431.  16 KiB, as h11 and IIS.
    max_header_bytes: int = 16384
    # Number of field lines: 431.  gunicorn's limit_request_fields.
    max_fields: int = 100
    # The body: 413, checked against Content-Length before any body byte is read.  1 GiB,
    # as waitress's max_request_body_size.
    max_body_bytes: int = 1 << 30
    # A chunk-size line with its extensions: 400.  Bounds chunk-ext, which carries no meaning
    # for us but costs memory if unbounded.
    max_chunk_line_bytes: int = 4096


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Request:
    """A request head.

    ``content_length``, ``framing``, ``keep_alive`` and ``expect_continue`` are decided by the
    parser from the fields, in one place (``_framing.py``); a request built by hand for the
    client gets them from :meth:`Connection.send`.
    """

    method: bytes
    target: bytes
    headers: Headers = field(default_factory=Headers)
    http_version: bytes = b"1.1"
    framing: Framing = Framing.NONE
    content_length: int | None = None
    keep_alive: bool = True
    expect_continue: bool = False


@dataclass(slots=True)
class Response:
    """A final response head (status 200-599)."""

    status_code: int
    headers: Headers = field(default_factory=Headers)
    reason: bytes = b""
    http_version: bytes = b"1.1"
    framing: Framing = Framing.NONE
    content_length: int | None = None
    keep_alive: bool = True


@dataclass(slots=True)
class InformationalResponse:
    """An interim 1xx response (RFC 9110 §15.2), such as ``100 Continue``."""

    status_code: int
    headers: Headers = field(default_factory=Headers)
    reason: bytes = b""
    http_version: bytes = b"1.1"


@dataclass(slots=True)
class Data:
    """A piece of body, already de-chunked."""

    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    """The body is complete; ``trailers`` holds chunked trailer fields, if any."""

    trailers: Headers = field(default_factory=Headers)


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly, between messages."""
