"""The ``http`` cycle of one request, seen from the server: what the application may send,
checked, and the bytes that go on the wire for it (asgiref ``www.rst``).

No I/O here: the engine passes each message the application sends to :meth:`HTTPCycle.send`
and writes what comes back.  Framing follows kakehashi.http1's rules
(``decide_response_framing``), so a response is framed the same way on both engines.

The rules kept (docs/asgi.md, each with a test in tests/asgi/):

1. An invalid message raises :class:`~kakehashi.errors.LocalProtocolError`; unknown extra
   keys are ignored.
2. ``http.response.start`` is held until the first body message, so an application that
   fails in between still gets a 500 (the engine asks :attr:`HTTPCycle.head_sent`).
3. A ``Transfer-Encoding`` from the application is dropped: the server frames the body.
   A body whose length is known when the head goes out (one ``http.response.body`` without
   ``more_body``) gets a ``Content-Length``; otherwise HTTP/1.1 is chunked and HTTP/1.0 is
   delimited by closing the connection.
4. Anything sent after the response is complete raises.
5. Extensions: ``http.response.trailers`` (with ``trailers: True`` in the start message),
   ``http.response.early_hint`` (a 103 before the response; never to an HTTP/1.0 client,
   RFC 9110 §15.2) and ``http.response.pathsend`` (the engine sends the file).

States (``HTTPCycle.state``): START, then HELD once the start message came, BODY once the
head went out, TRAILERS while trailers are awaited, FILE while the engine sends a file,
DONE.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any, NamedTuple

from kakehashi.asgi._scope import message_type
from kakehashi.errors import LocalProtocolError
from kakehashi.http1 import (
    LAST_CHUNK,
    Framing,
    Request,
    decide_response_framing,
    encode_chunk,
    reason_phrase,
)
from kakehashi.http1._abnf import FIELD_VALUE, TOKEN

__all__ = ["FieldCache", "HTTPCycle", "PathSend", "Phase", "error_page"]

_NAME_RE = re.compile(TOKEN)
_VALUE_RE = re.compile(b"(?:" + FIELD_VALUE + b")?")
_DIGITS_RE = re.compile(rb"[0-9]{1,18}")
# Bounded, so an application sending endless new fields (session cookies) cannot grow it.
_MAX_CACHED_FIELDS = 512
# Response heads remembered (by status, request facts and fields), bounded as the fields.
_MAX_CACHED_HEADS = 256
# A body from this size on goes out as a piece of its own, not copied behind its head.
_GATHER_BYTES = 16 * 1024
# RFC 9110 §6.5.1: fields a trailer must not carry (framing, routing, the connection).
_NOT_IN_TRAILERS = frozenset(
    [b"content-length", b"transfer-encoding", b"host", b"connection", b"trailer",
     b"content-type", b"content-encoding", b"content-range"]
)  # fmt: skip


# "HTTP/1.1 200 OK\r\n", encoded once per status code (at most 400 of them: 200-599).
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))
    return line


class Phase(enum.Enum):
    START = "start"  # nothing sent yet (an early hint may go out)
    HELD = "held"  # http.response.start received, held until the first body message
    BODY = "body"  # the head is out; more body may follow
    TRAILERS = "trailers"  # the body is done; trailers are awaited
    FILE = "file"  # http.response.pathsend: the engine sends the file (file_head)
    DONE = "done"  # the response is complete


# Enum members are read through module names in the hot path: on Python 3.11, reading
# ``Phase.DONE`` goes through EnumType.__getattr__'s slow hook (80 ns, 28 on 3.12), and a
# request read a dozen (docs/design.md, "What was measured").
_START, _HELD, _BODY = Phase.START, Phase.HELD, Phase.BODY
_TRAILERS, _FILE, _DONE = Phase.TRAILERS, Phase.FILE, Phase.DONE
_NO_FRAMING, _LENGTH = Framing.NONE, Framing.LENGTH
_CHUNKED, _CLOSE = Framing.CHUNKED, Framing.CLOSE


# What the server must know of a response field beyond sending it.
PLAIN, CONTENT_LENGTH, CONNECTION, CONNECTION_CLOSE, DATE, SERVER, DROPPED = range(7)
_KINDS = {b"content-length": CONTENT_LENGTH, b"connection": CONNECTION, b"date": DATE,
          b"server": SERVER, b"transfer-encoding": DROPPED}  # fmt: skip
# One checked field: its line as sent ("name: value\r\n"), its kind, and for Content-Length
# the number.
Field = tuple[bytes, int, int]


class Head(NamedTuple):
    """A response head decided once: the bytes before the date (all of it when the
    application gave a Date), the bytes after it, and the framing decision's outcome."""

    before_date: bytes
    after_date: bytes | None  # None: the application gave its own Date
    framing: Framing
    content_length: int
    keep_alive: bool


class PathSend:
    """``http.response.pathsend``: the engine opens ``path``, asks :meth:`HTTPCycle.file_head`
    for the head, and sends the file's bytes after it."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class FieldCache:
    """Response fields and heads applications have sent before, checked and encoded, per
    server.

    Applications send the same few fields on every response; checking one costs two regular
    expressions, so the result is remembered (up to a bound).  So is the head they make with
    a request's facts (:class:`Head`): the framing decision and the bytes around the date are
    the same for every response of an endpoint.  Used from one event loop.
    """

    __slots__ = ("_fields", "heads")

    def __init__(self) -> None:
        self._fields: dict[tuple[bytes, bytes], Field] = {}
        self.heads: dict[tuple[Any, ...], Head] = {}  # by HTTPCycle._head's key

    def remember(self, key: tuple[Any, ...], head: Head) -> None:
        """Keep ``head`` for ``key``, unless the bound is reached (then it is decided each
        time, as a field past its own bound is checked each time)."""
        if len(self.heads) < _MAX_CACHED_HEADS:
            self.heads[key] = head

    def field(self, item: object) -> Field:
        """The checked form of one ``[name, value]`` pair of the application.

        Raises:
            LocalProtocolError: not a pair of byte strings, a name that is not a token, or a
                value with CR, LF, NUL or another control byte.
        """
        name: Any = None
        value: Any = None
        try:
            name, value = item  # type: ignore[misc]
            return self._fields[(name, value)]
        except (KeyError, TypeError, ValueError):
            pass
        checked = _check_field(item)
        if len(self._fields) < _MAX_CACHED_FIELDS:
            self._fields[(name, value)] = checked
        return checked


def _check_field(item: object) -> Field:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise LocalProtocolError(f"a header is a [name, value] pair of bytes, not {item!r}")
    name, value = item
    if type(name) is not bytes or type(value) is not bytes:
        raise LocalProtocolError(f"header names and values must be bytes, not {item!r}")
    if _NAME_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"illegal header name {name!r}")
    value = value.strip(b" \t")  # as for WSGI: surrounding whitespace is trimmed, not refused
    if _VALUE_RE.fullmatch(value) is None:
        raise LocalProtocolError(f"illegal header value {value!r} for {name!r}")
    lname = name.lower()
    kind = _KINDS.get(lname, PLAIN)
    number = 0
    if kind == CONTENT_LENGTH:
        if _DIGITS_RE.fullmatch(value) is None:
            raise LocalProtocolError(f"bad Content-Length {value!r} from the application")
        number = int(value)
    elif kind == CONNECTION and b"close" in [t.strip(b" \t") for t in value.lower().split(b",")]:
        kind = CONNECTION_CLOSE
    return b"%s: %s\r\n" % (name, value), kind, number


def _scan(lines: Sequence[Field]) -> tuple[int | None, bool, bool, bool, bool]:
    """Content-Length, whether Connection is set and says close, whether Date and Server
    are set."""
    length: int | None = None
    has_connection = wants_close = has_date = has_server = False
    for _, kind, number in lines:
        if kind == PLAIN:
            continue
        if kind == CONTENT_LENGTH:
            if length is not None and number != length:
                raise LocalProtocolError("conflicting Content-Length values")
            length = number
        elif kind in (CONNECTION, CONNECTION_CLOSE):
            has_connection = True
            wants_close = wants_close or kind == CONNECTION_CLOSE
        elif kind == DATE:
            has_date = True
        elif kind == SERVER:
            has_server = True
    return length, has_connection, wants_close, has_date, has_server


def _as_bytes(body: object, what: str) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise LocalProtocolError(f"{what} must be bytes, not {type(body).__name__}")


def _flag(message: Mapping[str, Any], key: str) -> bool:
    value = message.get(key, False)
    if type(value) is not bool:
        raise LocalProtocolError(f"{key!r} must be a bool, not {value!r}")
    return value


class HTTPCycle:
    """The response side of one request.

    Args:
        request: the request being answered (method, version, whether the client keeps the
            connection).
        fields: the server's :class:`FieldCache`.
        date: the ``Date`` value to add when the application sets none (the engine's clock).

    Owned by the task running the request; the engine reads ``status``, ``body_bytes``,
    ``head_sent``, ``keep_alive`` and ``phase``.
    """

    __slots__ = (
        "_date",
        "_fields",
        "_framing",
        "_lines",
        "_remaining",
        "_start",
        "_trailer_lines",
        "_trailers_wanted",
        "body_bytes",
        "head_sent",
        "headers",
        "keep_alive",
        "method",
        "phase",
        "status",
        "version",
    )

    def __init__(self, request: Request, fields: FieldCache, date: bytes) -> None:
        self.method = request.method
        self.version = request.http_version
        self.keep_alive = request.keep_alive
        self._fields = fields
        self._date = date
        self.phase = _START
        self.status = 0
        self.body_bytes = 0  # body bytes the application gave (for the request's facts)
        self.head_sent = False
        # The application's response fields as it gave them (the access log's %({name}o)s).
        self.headers: Any = None
        self._lines: list[Field] | tuple[()] = ()  # no list made until the start message
        self._trailers_wanted = False
        self._trailer_lines: tuple[bytes, ...] = ()  # rare: grown by http.response.trailers
        self._framing = _NO_FRAMING
        self._remaining = 0  # Content-Length framing: body bytes still owed

    @property
    def complete(self) -> bool:
        return self.phase is _DONE

    def send(self, message: Mapping[str, Any]) -> bytes | list[bytes] | PathSend:
        """What goes on the wire for ``message``: bytes (maybe empty), a list of pieces to
        write in order, or a :class:`PathSend` for the engine.

        Raises:
            LocalProtocolError: the message is invalid, or not allowed in this phase.
        """
        try:  # message_type() inlined: two calls a response
            kind = message["type"]
        except (TypeError, KeyError, IndexError):
            kind = message_type(message)  # raises the error it explains
        if kind == "http.response.body":
            return self._body(message)
        if kind == "http.response.start":
            return self._start_message(message)
        if kind == "http.response.trailers":
            return self._trailers(message)
        if kind == "http.response.pathsend":
            return self._pathsend(message)
        if kind == "http.response.early_hint":
            return self._early_hint(message)
        raise LocalProtocolError(f"unexpected ASGI message {kind!r} in an http cycle")

    # -- start -------------------------------------------------------------------------------

    def _start_message(self, message: Mapping[str, Any]) -> bytes:
        if self.phase is not _START:
            raise LocalProtocolError(f"http.response.start in phase {self.phase.value}")
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 599:
            # A 1xx is sent by the server (100, 103 via early_hint), never as the response.
            raise LocalProtocolError(f"status must be an int in 200-599, not {status!r}")
        headers = message.get("headers", ())
        try:
            # map, not a comprehension: on Python 3.11 that is a function made per call.
            self._lines = list(map(self._fields.field, headers))
        except TypeError:
            raise LocalProtocolError(f"headers must be an iterable, not {headers!r}") from None
        trailers = message.get("trailers", False)
        if trailers is not False:
            self._trailers_wanted = _flag(message, "trailers")
        self.headers = headers
        self.status = status
        self.phase = _HELD
        return b""

    def _head(self, known_length: int | None) -> bytes:
        """The response head, framed; ``known_length``: the whole body's length if known.

        The decision is remembered by what it depends on (the fields, the status, the
        request's method, version and keep-alive), unless it depends on the body's length:
        then it is made each time.
        """
        key = (self.status, self.method, self.version, self.keep_alive, *self._lines)
        head = self._fields.heads.get(key)
        if head is None:
            head, by_length = self._decide_head(known_length)
            if not by_length:
                self._fields.remember(key, head)
        self._framing = head.framing
        self._remaining = head.content_length
        self.keep_alive = head.keep_alive
        self._lines = ()
        if head.after_date is None:
            return head.before_date
        return head.before_date + self._date + head.after_date

    def _decide_head(self, known_length: int | None) -> tuple[Head, bool]:
        """The head for this response, and whether it depends on ``known_length`` (no
        Content-Length from the application)."""
        length, has_connection, wants_close, has_date, has_server = _scan(self._lines)
        by_length = length is None and self.method != b"HEAD"
        added_length = False
        if by_length and known_length is not None:
            length, added_length = known_length, True
        decision = decide_response_framing(
            self.method, self.version, self.keep_alive, self.status,
            length, has_connection, wants_close,
        )  # fmt: skip
        status = self.status
        # Loops, not comprehensions (on Python 3.11 each one is a function made per call).
        lines = [_STATUS_LINES.get(status) or _status_line(status)]
        append = lines.append
        if decision.drop_length:
            for line, kind, _ in self._lines:
                if kind != DROPPED and kind != CONTENT_LENGTH:
                    append(line)
        else:
            for line, kind, _ in self._lines:
                if kind != DROPPED:
                    append(line)
            if added_length:
                append(b"content-length: %d\r\n" % length)  # type: ignore[str-format]
        for name, value in decision.added:
            append(b"%s: %s\r\n" % (name, value))
        after_date: bytes | None = None
        if not has_date:
            append(b"date: ")
            after_date = b"\r\nserver: kakehashi\r\n\r\n" if not has_server else b"\r\n\r\n"
        else:
            append(b"server: kakehashi\r\n\r\n" if not has_server else b"\r\n")
        head = Head(
            b"".join(lines),
            after_date,
            decision.framing,
            decision.content_length or 0,
            decision.keep_alive,
        )
        return head, by_length

    # -- body --------------------------------------------------------------------------------

    def _body(self, message: Mapping[str, Any]) -> bytes | list[bytes]:
        body = message.get("body", b"")
        if type(body) is not bytes:
            body = _as_bytes(body, "body")
        more = message.get("more_body", False)
        if type(more) is not bool:
            raise LocalProtocolError(f"'more_body' must be a bool, not {more!r}")
        phase = self.phase
        if phase is _HELD:
            whole = None if more or self._trailers_wanted else len(body)
            head = self._head(whole)
            if whole is not None and self._framing is _LENGTH and self._remaining != whole:
                # Known before anything is sent: a 500 rather than a truncated response.
                raise LocalProtocolError(
                    f"Content-Length {self._remaining} but a body of {whole} bytes"
                )
            self.phase = _BODY
            data = self._frame(body, more)
            self.head_sent = True  # only now: whatever raised above, nothing went out
            if len(data) >= _GATHER_BYTES:
                return [head, data]
            return head + data
        if phase is not _BODY:
            raise LocalProtocolError(f"http.response.body in phase {phase.value}")
        return self._frame(body, more)

    def _frame(self, body: bytes, more: bool) -> bytes:
        """``body`` framed; at the end of the body the closing bytes too."""
        self.body_bytes += len(body)
        framing = self._framing
        if framing is _LENGTH:
            remaining = self._remaining - len(body)
            if remaining < 0:
                raise LocalProtocolError("body longer than its Content-Length")
            self._remaining = remaining
            if not more:
                if remaining:
                    raise LocalProtocolError("body shorter than its Content-Length")
                self.phase = _TRAILERS if self._trailers_wanted else _DONE
            return body
        if framing is _CHUNKED:
            if more:
                return encode_chunk(body)
            if self._trailers_wanted:
                self.phase = _TRAILERS
                return encode_chunk(body)
            self.phase = _DONE
            return encode_chunk(body) + LAST_CHUNK if body else LAST_CHUNK
        if not more:
            self.phase = _TRAILERS if self._trailers_wanted else _DONE
        if framing is _CLOSE:
            return body
        self.body_bytes -= len(body)  # no body goes out for HEAD, 204, 304
        return b""

    # -- extensions --------------------------------------------------------------------------

    def _trailers(self, message: Mapping[str, Any]) -> bytes:
        if self.phase is not _TRAILERS:
            raise LocalProtocolError(
                f"http.response.trailers in phase {self.phase.value} (they follow a final "
                "body of a response started with trailers: True)"
            )
        more = _flag(message, "more_trailers")
        field = self._fields.field
        lines = list(self._trailer_lines)
        for item in message.get("headers", ()):
            line, _, _ = field(item)
            if line.partition(b":")[0].lower() in _NOT_IN_TRAILERS:
                raise LocalProtocolError(f"{line.partition(b':')[0]!r} is not allowed in a trailer")
            lines.append(line)
        self._trailer_lines = tuple(lines)
        if more:
            return b""
        self.phase = _DONE
        if self._framing is not _CHUNKED:
            return b""  # RFC 9112 §7.1.2: only the chunked coding has room for them
        return b"0\r\n%s\r\n" % b"".join(self._trailer_lines)

    def _pathsend(self, message: Mapping[str, Any]) -> PathSend:
        if self.phase is not _HELD:
            raise LocalProtocolError(
                f"http.response.pathsend in phase {self.phase.value} (it replaces the body)"
            )
        path = message.get("path")
        if type(path) is not str or not PurePath(path).is_absolute():
            raise LocalProtocolError(f"pathsend needs an absolute path as str, not {path!r}")
        self.phase = _FILE
        return PathSend(path)

    def file_head(self, size: int) -> tuple[bytes, int]:
        """The head for a pathsend file of ``size`` bytes, and how many of them to send.

        Raises:
            LocalProtocolError: the application's Content-Length is not the file's size.
        """
        if self.phase is not _FILE:
            raise LocalProtocolError("file_head without http.response.pathsend")
        self._trailers_wanted = False
        head = self._head(size)
        if self._framing is _LENGTH and self._remaining != size:
            raise LocalProtocolError(
                f"Content-Length {self._remaining} but the file has {size} bytes"
            )
        self.phase = _DONE
        self.head_sent = True
        count = size if self._framing is _LENGTH else 0
        self.body_bytes = count
        return head, count

    def _early_hint(self, message: Mapping[str, Any]) -> bytes:
        if self.phase is not _START:
            raise LocalProtocolError("http.response.early_hint after the response started")
        links = message.get("links", ())
        lines = [self._fields.field((b"link", link))[0] for link in links]
        if self.version != b"1.1" or not lines:
            return b""  # RFC 9110 §15.2: no 1xx to an HTTP/1.0 client
        return b"HTTP/1.1 103 Early Hints\r\n%s\r\n" % b"".join(lines)


def error_page(status: int, detail: str, date: bytes) -> bytes:
    """A complete, short plain-text response that closes the connection (400s, 408, 500,
    503), as the thread engine writes them."""
    reason = reason_phrase(status)
    body = b"%d %s\n" % (status, reason)
    if detail:
        body += detail.encode("utf-8", "replace")[:1024] + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        b"Connection: close\r\nDate: %s\r\nServer: kakehashi\r\n\r\n%s"
        % (status, reason, len(body), date, body)
    )
