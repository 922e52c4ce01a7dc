"""The access log: one line per response, cheap enough to leave on.

A line is built once, as one string, from what went out on the wire: the status sent, the
body bytes the kernel took, the Basic-auth user.  Text that came from the client (request
line, Referer, User-Agent, any header) is escaped as nginx and gunicorn do (``\\"``, ``\\\\``,
``\\xNN`` for control and non-ASCII bytes), so one response is always one parseable line.

Formats: gunicorn's atoms (``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
%(D)s`` and the rest, see ``_ATOMS``) or ``json``, one object a line with stable keys.  The
default format and ``json`` have hand-written formatters; any other format is compiled once
into a list of small functions.

What a line is made of: a request's facts (peer, method, target, protocol, request and
response header fields, the user), read through the engine's :class:`RequestReader` from an
object only the engine knows (the thread engine's WSGI environ, the asyncio engine's own
request), plus the status, the body bytes and the duration.  The reader is asked when the
line is made, which for the default format is later and in a batch (:meth:`AccessLog.drain`),
so a request costs the log an append and nothing else; this module never names an environ key.

Where lines go: the ``kakehashi.access`` logger.  When its only handler is a
:class:`~kakehashi.server.observe.logfile.LogFileHandler` without formatter or filter (what
``kakehashi serve`` installs), the line goes straight into that handler's buffer and no
``logging`` record is made; otherwise (handlers of the user's, ``caplog``...) it is logged as
an INFO record whose message is the line, so every ``logging`` setup keeps working.

Requests refused before they reached the application (400, 408, 413, 414, 431, 505...) get
a line too, with ``-`` for what was not parsed.
"""

from __future__ import annotations

import base64
import binascii
import collections
import logging
import os
import re
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any, Protocol

from kakehashi.errors import ConfigError
from kakehashi.http1 import Request
from kakehashi.server.observe.logfile import LogFileHandler
from kakehashi.server.observe.wsaccess import WS_ATOMS, WebSocketCounts, ws_json

__all__ = [
    "BATCH",
    "DEFAULT_FORMAT",
    "AccessLog",
    "Entry",
    "RequestReader",
    "body_length",
    "check_format",
    "escape",
    "escape_token",
    "first_line",
    "request_line",
]

DEFAULT_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
JSON_FORMAT = "json"

_logger = logging.getLogger("kakehashi.access")
_INFO = logging.INFO
# Everything but printable ASCII, the double quote and the backslash is escaped.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
# Every ``%`` of a format: ``%%``, an atom ``%(name)s`` (the name checked on its own, so an
# unknown one is called that), or a stray one.
_PERCENT_RE = re.compile(r"%(?:(%)|\(([^()\r\n]{0,300})\)s)?")
_FIELD_RE = re.compile(r"\{[^}]{1,256}\}[ioe]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Responses whose lines are made and handed over together (AccessLog.drain): also the most
# environs a log holds on to, besides those requests add while a batch is being made.
BATCH = 64
# Longest request line kept from a refused request's bytes by default; longer ones log "-".
_MAX_LINE = 8192


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == '"' or char == "\\":
        return "\\" + char
    code = ord(char)
    if code < 256:
        return f"\\x{code:02x}"
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8"))


def _is_safe(text: str) -> bool:
    # Four C-level scans are cheaper than one regex search on short strings.
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def escape(text: str) -> str:
    """``text`` with quotes, backslashes, control and non-ASCII characters escaped."""
    if _is_safe(text):
        return text
    return _UNSAFE.sub(_escape_char, text)


def escape_token(text: str) -> str:
    """:func:`escape` for a field outside quotes (address, user): spaces too, as ``\\x20``."""
    return escape(text).replace(" ", "\\x20")


def body_length(response: bytes) -> int:
    """The body size of a complete response made by ``task.error_response``."""
    end = response.find(b"\r\n\r\n")
    return len(response) - end - 4 if end >= 0 else 0


def first_line(head: bytes, limit: int = _MAX_LINE) -> str:
    """The request line of raw request bytes, escaped; ``-`` when none arrived whole within
    ``limit`` bytes (a 414's line is not logged)."""
    start = len(head) - len(head.lstrip(b"\r\n"))  # empty lines before a request are ignored
    end = head.find(b"\n", start, start + limit + 2)
    if end < 0:
        return "-"
    line = head[start:end].rstrip(b"\r")
    return escape(line.decode("latin-1")) if line else "-"


def request_line(request: Request) -> str:
    """The request line of a parsed request head, escaped."""
    line = b"%s %s HTTP/%s" % (request.method, request.target, request.http_version)
    return escape(line.decode("latin-1"))


def basic_user(authorization: str | None) -> str:
    """The user name of a ``Basic`` Authorization value, escaped; ``-`` for anything else."""
    if not authorization or authorization[:6].lower() != "basic ":
        return "-"
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return "-"
    user, colon, _ = decoded.partition(b":")
    if not colon or not user:
        return "-"
    return escape_token(user.decode("latin-1"))


class _Clock:
    """Timestamps for the log, formatted at most once a second."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: tuple[float, float, str, str] = (0.0, 0.0, "", "")

    def now(self) -> tuple[float, float, str, str]:
        return self.at(time.time())

    def at(self, when: float) -> tuple[float, float, str, str]:
        """(second, next second, ``[01/Dec/2026:21:06:33 +0000]``, ``2026-12-01T21:06:33+00:00``)
        for the wall-clock time ``when``."""
        cache = self.cache
        if cache[0] <= when < cache[1]:
            return cache
        second = int(when)
        local = time.localtime(second)
        offset = local.tm_gmtoff or 0
        sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
        zone = f"{sign}{offset // 3600:02d}{offset // 60 % 60:02d}"
        day = f"{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year}"
        clf = f"[{day}:{time.strftime('%H:%M:%S', local)} {zone}]"
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone[:3] + ":" + zone[3:]
        cache = self.cache = (second, second + 1.0, clf, iso)  # one assignment: thread-safe
        return cache


Stamp = tuple[float, float, str, str]


class RequestReader(Protocol):
    """How the access log reads the facts of an engine's request object (one per engine).

    Each method returns text as the application saw it, unescaped, or None when unknown."""

    def summary(self, request: Any) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
        """(peer address, method, target, protocol, Referer, User-Agent, Authorization)."""

    def header(self, request: Any, name: str) -> Any:
        """A request header field by lower-case name."""

    def path(self, request: Any) -> Any:
        """The decoded path (without the query)."""

    def query(self, request: Any) -> Any:
        """The query string."""

    def variable(self, request: Any, key: str) -> Any:
        """``%({key}e)s``: a variable of the request's environment (engine-defined)."""


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else escape(str(value))


class Entry:
    """What one access line is made of; ``request`` is None for a refused request."""

    __slots__ = (
        "_facts",
        "headers_out",
        "reader",
        "remote",
        "request",
        "request_line",
        "seconds",
        "sent",
        "status",
        "ws",
    )

    def __init__(
        self,
        remote: str,
        request_line: str,
        status: int,
        sent: int,
        seconds: float,
        reader: RequestReader | None = None,
        request: Any = None,
        headers_out: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.remote = remote or "-"
        self.request_line = request_line
        self.status = status
        self.sent = sent
        self.seconds = seconds
        self.reader = reader
        self.request = request
        self.headers_out = headers_out
        self._facts: tuple[Any, ...] | None = None
        self.ws: WebSocketCounts | None = None  # a WebSocket's line (wsaccess.py)

    def fact(self, index: int) -> Any:
        """Item ``index`` of the reader's summary (asked once); None for a refused request."""
        if self.reader is None or self.request is None:
            return None
        if self._facts is None:
            self._facts = self.reader.summary(self.request)
        return self._facts[index]

    def header(self, name: str) -> str:
        if self.reader is None or self.request is None:
            return "-"
        return _text(self.reader.header(self.request, name))

    def variable(self, key: str) -> str:
        if self.reader is None or self.request is None:
            return "-"
        return _text(self.reader.variable(self.request, key))

    def path(self) -> str:
        if self.reader is None or self.request is None:
            return "-"
        return _text(self.reader.path(self.request))

    def raw_query(self) -> Any:
        if self.reader is None or self.request is None:
            return None
        return self.reader.query(self.request)

    def query(self) -> str:
        return _text(self.raw_query())

    def header_out(self, name: str) -> str:
        raw = name.encode("latin-1").lower()
        for key, value in self.headers_out or ():
            if key.lower() == raw:
                return escape(value.decode("latin-1"))
        return "-"

    def user(self) -> str:
        return basic_user(self.fact(6))


Atom = Callable[[Entry, Stamp], str]


_ATOMS: dict[str, Atom] = {
    "h": lambda e, t: e.remote,
    "l": lambda e, t: "-",
    "u": lambda e, t: e.user(),
    "t": lambda e, t: t[2],
    "r": lambda e, t: e.request_line,
    "m": lambda e, t: _text(e.fact(1)),
    "U": lambda e, t: e.path(),
    "q": lambda e, t: e.query(),
    "H": lambda e, t: _text(e.fact(3)),
    "s": lambda e, t: str(e.status),
    "B": lambda e, t: str(e.sent),
    "b": lambda e, t: str(e.sent),
    "f": lambda e, t: _text(e.fact(4)),
    "a": lambda e, t: _text(e.fact(5)),
    "T": lambda e, t: str(int(e.seconds)),
    "M": lambda e, t: str(int(e.seconds * 1e3)),
    "D": lambda e, t: str(int(e.seconds * 1e6)),
    "L": lambda e, t: f"{e.seconds:.6f}",
    "p": lambda e, t: f"<{os.getpid()}>",
    **WS_ATOMS,
}


def _compile_atom(name: str) -> Atom:
    if not _FIELD_RE.fullmatch(name):
        try:
            return _ATOMS[name]
        except KeyError:
            raise ConfigError(f"--access-log-format: unknown atom %({name})s") from None
    inner, kind = name[1:-2], name[-1]
    if kind == "i":
        lower = inner.lower()
        return lambda e, t: e.header(lower)
    if kind == "o":
        return lambda e, t: e.header_out(inner)
    return lambda e, t: e.variable(inner)


def _compile(fmt: str) -> Callable[[Entry, Stamp], str]:
    """A function making the line of ``fmt``; ``%%`` is a literal ``%``."""
    if "\n" in fmt or "\r" in fmt:
        raise ConfigError("--access-log-format: a line may not contain a line break")
    literals: list[str] = []
    atoms: list[Atom] = []
    text: list[str] = []  # the literal since the last atom
    pos = 0
    for match in _PERCENT_RE.finditer(fmt):
        text.append(fmt[pos : match.start()])
        pos = match.end()
        if match.group(1):
            text.append("%")
        elif match.group(2) is not None:
            literals.append("".join(text))
            atoms.append(_compile_atom(match.group(2)))
            text = []
        else:
            rest = fmt[match.start() : match.start() + 12]
            raise ConfigError(
                f"--access-log-format: stray % at {rest!r} (atoms are %(x)s; write %% for a %)"
            )
    tail = "".join(text) + fmt[pos:]
    pairs = list(zip(literals, atoms, strict=True))

    def line(e: Entry, t: Stamp) -> str:
        return "".join([lit + atom(e, t) for lit, atom in pairs]) + tail

    return line


def check_format(fmt: str) -> None:
    """Raise ConfigError if ``fmt`` is neither ``json`` nor a valid atom format."""
    if len(fmt) > 4096:
        raise ConfigError("--access-log-format is longer than 4096 characters")
    if fmt != JSON_FORMAT:
        _compile(fmt)


def _default_line(e: Entry, t: Stamp) -> str:
    """The default line of a refused request (AccessLog.response makes the others)."""
    return f'{e.remote} - - {t[2]} "{e.request_line}" {e.status} {e.sent} "-" "-" 0'


def _combined_lines(
    items: list[tuple[Any, ...]], clock: _Clock, reader: RequestReader
) -> list[str]:
    """The default lines of ``(request, status, sent, seconds, time)`` items, made in one
    loop (AccessLog.drain); an item that fails gives a note instead of its line."""
    lines: list[str] = []
    append = lines.append
    stamp = clock.cache
    summary = reader.summary
    for request, status, sent, seconds, at in items:
        try:
            if not stamp[0] <= at < stamp[1]:
                stamp = clock.at(at)
            remote, method, target, protocol, referer, agent, auth = summary(request)
            referer = referer or "-"
            agent = agent or "-"
            # One check for the usual, clean request.  The method, protocol and address are
            # checked too: middleware (ProxyFix, method overrides) may have set them from
            # client headers.
            raw = f"{remote}{method}{target}{protocol}{referer}{agent}"
            if not (raw.isascii() and raw.isprintable() and '"' not in raw and "\\" not in raw) or (
                " " in remote
            ):
                remote, method, protocol = escape_token(remote), escape(method), escape(protocol)
                target, referer, agent = escape(target), escape(referer), escape(agent)
            append(
                f"{remote or '-'} - {basic_user(auth) if auth else '-'} {stamp[2]} "
                f'"{method} {target} {protocol}" {status} {sent} "{referer}" "{agent}" '
                f"{int(seconds * 1e6)}"
            )
        except Exception as exc:  # a request a middleware broke: say so, keep the rest
            append(f"(access line failed to render: {exc!r})")
    return lines


def _json_value(value: Any) -> str:
    return "null" if value is None else _json_str(str(value))


def _json_text(text: str) -> str:
    return "null" if text == "-" else _json_str(text)


def _json_line(e: Entry, t: Stamp) -> str:
    # Stable keys, always all of them; null for what is unknown (a refused request).
    return (
        f'{{"time":"{t[3]}","remote_addr":{_json_text(e.remote)},'
        f'"user":{_json_text(e.user())},"request":{_json_text(e.request_line)},'
        f'"method":{_json_value(e.fact(1))},"path":{_json_value(e.fact(2))},'
        f'"query":{_json_value(e.raw_query())},'
        f'"protocol":{_json_value(e.fact(3))},"status":{e.status},'
        f'"bytes":{e.sent},"referer":{_json_value(e.fact(4))},'
        f'"user_agent":{_json_value(e.fact(5))},'
        f'"duration_us":{int(e.seconds * 1e6)},"pid":{os.getpid()}{ws_json(e.ws)}}}'
    )


def _fast_handler() -> LogFileHandler | None:
    """The LogFileHandler that may take lines directly: the only handler of the access
    logger, without formatter or filter, and no parent to propagate to; else None."""
    handlers = _logger.handlers
    if len(handlers) != 1 or _logger.propagate or _logger.filters:
        return None
    handler = handlers[0]
    if (
        type(handler) is not LogFileHandler
        or handler.formatter is not None
        or handler.filters
        or handler.level > _INFO
    ):
        return None
    return handler


class AccessLog:
    """The access log of one server: formats lines and hands them to their destination.

    With the default format and a LogFileHandler as the logger's only handler (what
    ``kakehashi serve`` sets up), a request's thread only appends what its line is made of
    (the environ, status, bytes, duration, time) to ``_pending``; lines are made and handed
    to the handler in batches (:meth:`drain`): by the request that fills a batch, and by the
    handler's flusher before every write, so a line waits no longer than it did in the
    handler.  Done once per line, in a loop, this costs far less than a line made per
    request.  A batch holds at most BATCH environs (and what requests add while one is
    drained), whatever the destination does.  Threads: ``_pending`` is a deque (append and
    popleft are atomic); ``_direct`` is read and written whole.
    """

    __slots__ = ("__weakref__", "_clock", "_direct", "_line", "_pending", "enabled", "reader")

    def __init__(
        self, reader: RequestReader, fmt: str = DEFAULT_FORMAT, enabled: bool = True
    ) -> None:
        self.reader = reader
        self.enabled = enabled
        self._clock = _Clock()
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        # The handler that takes this log's batches, while _fast_handler() says it is.
        self._direct: LogFileHandler | None = None
        if fmt == DEFAULT_FORMAT:
            self._line: Callable[[Entry, Stamp], str] = _default_line
        elif fmt == JSON_FORMAT:
            self._line = _json_line
        else:
            self._line = _compile(fmt)

    def is_enabled(self) -> bool:
        # Asked per line made (isEnabledFor is cached by logging), so a level set after the
        # server started still takes effect (for batched lines, from the next batch drained).
        return self.enabled and _logger.isEnabledFor(_INFO)

    def response(
        self,
        request: Any,
        status: int,
        sent: int,
        seconds: float,
        headers_out: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Log a response to ``request`` (the engine's object, read through the reader),
        which the application saw.

        The logger's level is asked here only for a line made at once; a batched one is
        asked about when its batch is drained."""
        if self._line is _default_line:
            if self._direct is not None or self._batch_to(_fast_handler()):
                pending = self._pending
                pending.append((request, status, sent, seconds, time.time()))
                if len(pending) >= BATCH:
                    self.drain()
                return
            if not _logger.isEnabledFor(_INFO):
                return
            item = (request, status, sent, seconds, time.time())
            _logger.info(_combined_lines([item], self._clock, self.reader)[0])
            return
        if not _logger.isEnabledFor(_INFO):
            return
        entry = Entry("", "", status, sent, seconds, self.reader, request, headers_out)
        remote, method, target, protocol = (entry.fact(i) for i in range(4))
        entry.request_line = escape(f"{method} {target} {protocol}")
        entry.remote = escape_token(str(remote)) or "-"
        self._emit(self._line(entry, self._clock.now()))

    def websocket(
        self, request: Any, seconds: float, counts: WebSocketCounts, status: int = 101
    ) -> None:
        """Log a WebSocket that ended: one line for the whole connection (wsaccess.py)."""
        if not self.is_enabled():
            return
        if self._line is _default_line:  # %(b)s: the bytes sent after the handshake
            item = (request, status, counts[3], seconds, time.time())
            self._emit(_combined_lines([item], self._clock, self.reader)[0])
            return
        entry = Entry("", "", status, counts[3], seconds, self.reader, request)
        entry.ws = counts
        remote, method, target, protocol = (entry.fact(i) for i in range(4))
        entry.request_line = escape(f"{method} {target} {protocol}")
        entry.remote = escape_token(str(remote)) or "-"
        self._emit(self._line(entry, self._clock.now()))

    def _batch_to(self, handler: LogFileHandler | None) -> bool:
        """Send batches to ``handler`` from now on; False (log line by line) for None or an
        unbuffered handler, whose lines are written at once and which has no flusher to
        drain a batch."""
        if handler is None or not handler.buffered:
            return False
        handler.add_source(self)
        self._direct = handler
        return True

    def drain(self) -> None:
        """Make the lines of every response waiting in ``_pending`` and hand them over
        (any thread; the handler's flusher calls it before it writes)."""
        pending = self._pending
        items = []
        while pending:
            try:
                items.append(pending.popleft())
            except IndexError:  # another thread took the last one
                break
        if not items or not _logger.isEnabledFor(_INFO):
            return
        lines = _combined_lines(items, self._clock, self.reader)
        handler = _fast_handler()
        if handler is not None and handler is self._direct:
            handler.queue_lines(lines)
            return
        # The logging setup changed since: these lines go where it says now.
        self._direct = None
        for line in lines:
            self._emit(line)

    def refused(self, remote: str, status: int, sent: int, request_line: str = "-") -> None:
        """Log an error page sent without running the application (``sent``: its body bytes
        that went out; ``request_line`` escaped, ``-`` when it was not parsed)."""
        if not self.is_enabled():
            return
        entry = Entry(remote, request_line, status, sent, 0.0)
        self._emit(self._line(entry, self._clock.now()))

    def _emit(self, line: str) -> None:
        handler = _fast_handler()
        if handler is None:
            _logger.info(line)
        else:
            handler.write_line(line)

    def start(self) -> None:
        """Start the flusher of a LogFileHandler on the access logger: from the thread that
        starts the server, before any request, and again on every sweeper tick, in case the
        application's logging setup closed the handler (its batches wait for the flusher)."""
        if self.enabled:
            for handler in _logger.handlers:
                if isinstance(handler, LogFileHandler):
                    handler.start()

    def flush(self) -> None:
        """Write out what the access log's handlers hold (at shutdown)."""
        self.drain()
        for handler in _logger.handlers:
            handler.flush()
