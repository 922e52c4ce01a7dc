"""HTTPConnection: one client connection on the asyncio engine, as an ``asyncio.Protocol``.

Bytes arrive in :meth:`HTTPConnection.data_received` and go through the same sans-I/O core
as on the thread engine (``maybe_parse_request_head``, its fast path; the body readers), so
every limit and 4xx answer is the same on both engines.  One request is served at a time, in
order: pipelined requests wait in ``buf`` until the response before them is complete.

Flow control, both ways:

1. Reading pauses while the application has not taken more than ``_BODY_MARK`` bytes of
   body, or more than ``_PIPELINE_MARK`` bytes wait behind the current request.
2. Writing: asyncio calls :meth:`pause_writing` when the transport holds more than its
   high-water mark; the application's ``send()`` then waits in :meth:`drain` until
   :meth:`resume_writing`.  So memory per connection is bounded on both sides.

Timers: no timer per request.  Each connection keeps a ``deadline`` (from the context's
coarse clock); the server's sweep looks at every connection once a tick (:meth:`check`):
the header timeout (408 once part of a head arrived, a silent close before), keep-alive,
the body's progress and rate, and a reader's progress and rate (``SendPace``) while output
waits for it.

Owned by the event loop's thread; nothing here is touched from another thread.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
from operator import itemgetter
from typing import IO, Any

from kakehashi.asgi import HTTPCycle, error_page
from kakehashi.errors import ClientDisconnected, LocalProtocolError, RemoteProtocolError
from kakehashi.http1 import (
    ChunkedReader,
    Framing,
    ReceiveBuffer,
    Request,
    maybe_parse_request_head,
)
from kakehashi.server.aio._shared import SendPace, body_length, first_line, request_line
from kakehashi.server.aio.context import AioContext, error_logger
from kakehashi.server.aio.exchange import Exchange
from kakehashi.server.aio.tlsinfo import tls_scope
from kakehashi.server.aio.websocket import WebSocketSession, start_websocket
from kakehashi.websocket import is_websocket_request

__all__ = ["BufferedHTTPConnection", "ConnPhase", "HTTPConnection"]

_EMPTY_LINES_RE = re.compile(rb"(?:\r\n)*")
# Body bytes the application has not taken yet, above which reading pauses.
_BODY_MARK = 256 * 1024
# Bytes of pipelined requests waiting behind the current one, above which reading pauses.
_PIPELINE_MARK = 64 * 1024
# A Content-Length body the application left unread is read and dropped up to this much
# to keep the connection (as on the thread engine); beyond, closing is cheaper.
_DRAIN_BYTES = 1 << 20
# A pathsend file goes out in pieces of this size, so the sweep sees progress between them.
_FILE_PIECE = 1 << 20
_READ_PIECE = 256 * 1024
_name = itemgetter(0)


class ConnPhase(enum.Enum):
    IDLE = "idle"  # waiting for a request's first byte (fresh or kept alive)
    HEAD = "head"  # part of a request head arrived
    BUSY = "busy"  # a request is being served


# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_IDLE, _HEAD, _BUSY = ConnPhase.IDLE, ConnPhase.HEAD, ConnPhase.BUSY
_NO_BODY, _LENGTH = Framing.NONE, Framing.LENGTH


class HTTPConnection(asyncio.Protocol):
    """One connection.  ``exch`` is the request being served (None between requests)."""

    __slots__ = (
        "_drain_waiter",
        "buf",
        "client",
        "closed",
        "closing",
        "ctx",
        "deadline",
        "exch",
        "file_since",
        "next_pending",
        "pace",
        "pace_on",
        "pace_taken",
        "phase",
        "reading",
        "requests",
        "scheme",
        "tls",
        "transport",
        "unsent",
        "write_paused",
        "written",
        "ws",
    )

    def __init__(self, ctx: AioContext) -> None:
        self.ctx = ctx
        self.transport: Any = None
        self.client: tuple[str, int] | None = None
        self.scheme = ctx.scheme
        self.tls: dict[str, Any] | None = None
        self.buf = b""
        self.phase = _IDLE
        self.deadline = ctx.now + ctx.config.header_timeout  # a fresh connection's head timer
        self.requests = 0
        self.exch: Exchange | None = None
        self.closing = False
        self.closed = False
        self.reading = True
        self.write_paused = False
        self.next_pending = False  # the next request waits for the output to drain
        self._drain_waiter: asyncio.Future[None] | None = None
        self.written = 0  # bytes handed to the transport, for the reader's pace
        self.pace: SendPace | None = None
        self.pace_on = False
        self.pace_taken = 0
        self.file_since = 0.0  # a pathsend file is going out: when the last piece did
        self.unsent = 0  # bytes a dropped slow reader never took (the access log)
        self.ws: WebSocketSession | None = None  # after an upgrade: the bytes go there

    # -- asyncio's callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        ctx = self.ctx
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = (peer[0], peer[1])
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls = tls_scope(ssl_object)
        ctx.connections.add(self)
        if ctx.metrics is not None:
            ctx.metrics.opened()
        if ctx.stopping:
            ctx.last_accept = ctx.loop.time()
            self.deadline = min(self.deadline, ctx.linger_until)

    # asyncio's BufferedProtocol, used by BufferedHTTPConnection: asyncio reads into the
    # buffer get_buffer gives, and tells how much came.
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.ctx.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.ctx.read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        self.ctx.progress += 1  # the loop runs (watchdog.py)
        if self.ws is not None:
            self.ws.data_received(data)
            return
        exch = self.exch
        if exch is not None:
            self._more_of_request(exch, data)
            return
        if self.closing:
            return
        buf = self.buf
        if buf:
            buf += data
            self.buf = buf
            # A head can only complete, or a line be judged, once an LF arrives; before that
            # only its size can be wrong.  Not re-parsing until then keeps a head trickled
            # in tiny pieces linear instead of quadratic (as on the thread engine).
            limits = self.ctx.limits
            line_done = buf.find(b"\n", 0, limits.max_request_line_bytes) >= 0
            limit = limits.max_header_bytes if line_done else limits.max_request_line_bytes
            if data.find(b"\n") < 0 and len(buf) <= limit:
                return
        else:
            self.buf = data
        self._serve()

    def eof_received(self) -> bool | None:
        # The client closed its side: as uvicorn, that is the client leaving (the
        # application sees http.disconnect); the transport closes.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = self.closed = True
        self.ctx.connection_closed(self)
        if self.ctx.metrics is not None:
            self.ctx.metrics.closed()
        if self.exch is not None:
            self.exch.client_gone()
        if self.ws is not None:
            self.ws.connection_lost()
        self._wake_drain()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if self.ws is not None:
            self.ws.writable()
        if self.next_pending:
            self.next_pending = False
            self._go_on()

    # -- requests ----------------------------------------------------------------------------

    def _serve(self) -> None:
        """Start the request at the front of the buffer, if its head is complete."""
        try:
            ctx = self.ctx
            parsed = maybe_parse_request_head(self.buf, 0, ctx.limits, None, ctx.heads)
        except RemoteProtocolError as exc:
            self._refuse(exc)
            return
        if parsed is None:
            self._head_incomplete()
            return
        request, end = parsed
        ctx = self.ctx
        self.requests += 1
        try:
            scope = ctx.scopes.build(request, self.client, self.scheme, ctx.state, self.tls)
        except RemoteProtocolError as exc:
            self._refuse(exc)
            return
        # The scope's names are lower-cased: an Upgrade field is looked for in C, and only
        # a request that has one is read as a WebSocket upgrade (no index of its fields).
        if b"upgrade" in map(_name, scope["headers"]) and is_websocket_request(request):
            self.phase = _BUSY
            start_websocket(self, request, self.buf[end:], scope)
            return
        if ctx.limit and ctx.in_flight >= ctx.limit:
            self._answer(503, f"more than {ctx.limit} requests in flight")
            return
        cycle = HTTPCycle(request, ctx.fields, ctx.date)
        exch = Exchange(self, request, scope, cycle)
        buf = self.buf
        if request.framing is _NO_BODY:
            self.buf = buf[end:] if len(buf) > end else b""
        elif not self._start_body(exch, request.framing, buf[end:]):
            return
        if ctx.goodbye and not self.buf:  # the last request received says goodbye
            cycle.keep_alive = False
        self.exch = exch
        self.phase = _BUSY
        ctx.in_flight += 1
        ctx.requests += 1
        exch.task = task = ctx.loop.create_task(exch.run())
        ctx.tasks.add(task)

    def _head_incomplete(self) -> None:
        if self.buf[:2] == b"\r\n":
            # RFC 9112 §2.2: empty lines before a request are ignored; dropped here so a
            # stream of them is never rescanned (the head timer bounds them).
            skipped = _EMPTY_LINES_RE.match(self.buf)
            if skipped is not None:
                self.buf = self.buf[skipped.end() :]
        if self.phase is _IDLE:
            self.phase = _HEAD
            if self.requests:  # a fresh connection's head timer runs from accept
                self.deadline = self.ctx.now + self.ctx.config.header_timeout

    def _start_body(self, exch: Exchange, framing: Framing, body: bytes) -> bool:
        """Set ``exch`` up to receive its body, starting with what came with the head."""
        exch.body_done = False
        if framing is _LENGTH:
            exch.remaining = exch.request.content_length or 0
        else:
            exch.reader = ChunkedReader(self.ctx.limits)
            exch.rbuf = ReceiveBuffer()
        exch.continue_needed = exch.request.expect_continue and not body
        self.buf = b""
        if body:
            try:
                self.buf = exch.feed(body)
            except RemoteProtocolError as exc:
                self._refuse(exc, exch.request)
                return False
            if exch.buffered > _BODY_MARK:
                self._pause()
        return True

    def _more_of_request(self, exch: Exchange, data: bytes) -> None:
        """Bytes while a request is served: its body, or what is pipelined behind it."""
        if exch.body_done:
            self.buf += data
            if len(self.buf) > _PIPELINE_MARK:
                self._pause()
            return
        try:
            rest = exch.feed(data)
        except RemoteProtocolError as exc:
            self._refuse(exc)
            return
        if rest:
            self.buf += rest
        if exch.body_done:
            if exch.discard:  # the response went out already: go on to the next request
                self._next()
        elif exch.buffered > _BODY_MARK:
            self._pause()

    def response_done(self, exch: Exchange) -> None:
        """The response to ``exch`` is complete (the application may still be running)."""
        if exch is not self.exch:
            return
        if not exch.cycle.keep_alive:
            self.close()
            return
        if exch.body_done and not self.write_paused:  # the usual case, as _next does it
            self.exch = None
            self._go_on()
            return
        if not exch.body_done:
            # A body the application left unread: dropped as it comes if it is short,
            # else the connection closes.  A client still waiting for 100 Continue may
            # never send it: closing is the only safe end (RFC 9110 §10.1.1).
            if exch.continue_needed or exch.reader is not None or exch.remaining > _DRAIN_BYTES:
                self.close()
                return
            exch.discard = True
            exch.chunks = []
            if exch.buffered:
                exch.buffered = 0
                self._maybe_resume()
            return
        self._next()

    def _next(self) -> None:
        self.exch = None
        if self.write_paused:  # in order, and no second response behind an unread first
            self.next_pending = True
            return
        self._go_on()

    def _go_on(self) -> None:
        """As after any response: serve what was pipelined, else wait for the next request."""
        ctx = self.ctx
        self.phase = _IDLE
        if self.buf:
            self.deadline = ctx.now + ctx.config.header_timeout
            self._serve()
        else:
            self.deadline = ctx.now + ctx.config.keep_alive
            if ctx.stopping:
                self.deadline = min(self.deadline, ctx.linger_until)
        if not self.reading:  # the usual case reads on: no call
            self._maybe_resume()

    # -- flow control ------------------------------------------------------------------------

    def _pause(self) -> None:
        if self.reading and not self.closing:
            self.reading = False
            self.transport.pause_reading()

    def _maybe_resume(self) -> None:
        if self.reading or self.closing:
            return
        exch = self.exch
        if (exch is None or exch.buffered <= _BODY_MARK) and len(self.buf) <= _PIPELINE_MARK:
            self.reading = True
            self.transport.resume_reading()

    def pause(self) -> None:
        """Stop reading (a WebSocket whose application's queue is full)."""
        self._pause()

    def resume(self) -> None:
        if not self.reading and not self.closing:
            self.reading = True
            self.transport.resume_reading()

    def body_taken(self) -> None:
        """The application took the buffered body: read on if that paused reading."""
        if not self.reading:
            self._maybe_resume()

    def write(self, data: bytes) -> None:
        self.transport.write(data)
        self.written += len(data)

    def writelines(self, pieces: list[bytes]) -> None:
        """A head and a big body in one go: one system call and one segment where two
        writes made two (uvloop gathers them, asyncio from Python 3.12 too; before 3.12
        asyncio joins them, one copy of the body)."""
        self.transport.writelines(pieces)
        self.written += sum(map(len, pieces))

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark.

        Raises:
            ClientDisconnected: the connection closed meanwhile.
        """
        if not self.closing and self.write_paused:
            waiter = self._drain_waiter
            if waiter is None:
                waiter = self._drain_waiter = self.ctx.loop.create_future()
            await asyncio.shield(waiter)
        if self.closing:
            raise ClientDisconnected("the client is gone")

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send_file(self, file: IO[bytes], count: int) -> None:
        """Send ``count`` bytes of ``file`` after what was written: ``os.sendfile`` on
        asyncio's loop (plain TCP), else read and written in pieces, with flow control."""
        ctx = self.ctx
        offset = 0
        self.file_since = ctx.now
        try:
            while offset < count:
                if self.closing:
                    raise ClientDisconnected("the client is gone")
                if ctx.native_sendfile:
                    size = min(count - offset, _FILE_PIECE)
                    try:
                        await ctx.loop.sendfile(self.transport, file, offset, size)
                    except RuntimeError as exc:  # the transport closed meanwhile
                        raise ClientDisconnected(str(exc)) from exc
                    self.written += size
                else:
                    data = os.pread(file.fileno(), min(count - offset, _READ_PIECE), offset)
                    if not data:
                        raise LocalProtocolError("pathsend: the file shrank while being sent")
                    size = len(data)
                    self.write(data)
                    if self.write_paused:
                        await self.drain()
                offset += size
                self.file_since = ctx.now
        finally:
            self.file_since = 0.0

    # -- ending ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close once what was written is sent."""
        if not self.closing:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping what was not sent (a response that must not look whole)."""
        self.closing = True
        self.transport.abort()

    def refuse(self, exc: RemoteProtocolError) -> None:
        self._refuse(exc)

    def answer(self, status: int, detail: str) -> None:
        """A short error response, then the connection closes."""
        self._answer(status, detail)

    def _refuse(self, exc: RemoteProtocolError, request: Request | None = None) -> None:
        """A protocol error: answered with its status (if no response started), closed.
        ``request``: the request whose body broke, if its exchange is not under way yet."""
        error_logger.info(
            "%d for %s: %s", exc.status_hint, self.client[0] if self.client else "-", exc
        )
        if self.ctx.metrics is not None:
            self.ctx.metrics.refused(exc.status_hint)
        self._answer(exc.status_hint, str(exc), request)

    def _answer(self, status: int, detail: str, request: Request | None = None) -> None:
        exch = self.exch
        if exch is not None:
            exch.client_gone()
            if exch.cycle.head_sent:
                self.abort()
                return
            exch.cycle.status = status
            exch.write_error_page(status, detail)  # its access line is the exchange's
        else:
            page = error_page(status, detail, self.ctx.date)
            self.write(page)
            limit = self.ctx.limits.max_request_line_bytes
            line = request_line(request) if request is not None else first_line(self.buf, limit)
            host = self.client[0] if self.client else ""
            self.ctx.access.refused(host, status, body_length(page), line)
        self.close()

    # -- the sweep ---------------------------------------------------------------------------

    def check(self, now: float) -> None:
        """Once a tick: enforce the timeouts and the reader's pace (see the module)."""
        if self.closed:
            return
        queued = self.transport.get_write_buffer_size()
        if queued:
            if self._pace_broken(now, queued):
                return
        elif self.pace_on:
            self.pace_on = False
        if self.ws is not None:
            self.ws.check(now)
            return
        if self.closing:
            return
        if self.phase is _BUSY:
            self._check_busy(now)
        elif now >= self.deadline:
            self._expire()

    def _pace_broken(self, now: float, queued: int) -> bool:
        taken = self.written - queued
        pace = self.pace
        if pace is None:
            config = self.ctx.config
            pace = self.pace = SendPace(
                config.send_timeout, config.send_min_rate, config.send_rate_window
            )
        if not self.pace_on:
            pace.begin(now, queued)
            self.pace_on = True
        else:
            pace.record(taken - self.pace_taken, now)
        self.pace_taken = taken
        reason = pace.broken(now, queued)
        if reason:
            self._drop_reader(reason, queued)
        return bool(reason)

    def _drop_reader(self, reason: str, queued: int) -> None:
        error_logger.info(
            "slow reader %s dropped (%s): %d bytes sent, %d still queued",
            self.client[0] if self.client else "-",
            reason,
            self.pace.sent if self.pace else 0,
            queued,
        )
        if self.exch is not None and self.exch.task is not None and self.file_since:
            self.exch.task.cancel()  # a sendfile in progress ends with the task
        # What the reader never took is dropped with the transport: not in the access line.
        # (Only here: what an abort drops otherwise depends on the loop, and is at most what
        # one send() wrote; uvloop still flushes a write queued in the same turn.)
        self.unsent = queued
        if self.ws is not None:
            self.ws.dropped(reason)
        self.abort()

    def _check_busy(self, now: float) -> None:
        config = self.ctx.config
        if self.file_since and now - self.file_since >= config.send_timeout:
            self._drop_reader(f"no progress for {config.send_timeout:g} s", 0)
            return
        exch = self.exch
        if exch is None or exch.body_done or not self.reading or exch.continue_needed:
            return  # no body awaited from the client, or we are the ones holding it back
        if now - exch.progressed >= config.body_timeout:
            where = self.client[0] if self.client else "-"
            timeout = config.body_timeout
            error_logger.info("408 for %s: body timeout (%gs without a byte)", where, timeout)
            self._timed_out("body")
            self._answer(408, "body timeout")
        elif config.body_min_rate and (
            now >= exch.started + config.body_timeout + exch.received / config.body_min_rate
        ):
            error_logger.info(
                "body slower than %d B/s (%d bytes in %.1fs) for %s: 408, closed",
                config.body_min_rate, exch.received, now - exch.started,
                self.client[0] if self.client else "-",
            )  # fmt: skip
            self._timed_out("body")
            self._answer(408, "body too slow")

    def _timed_out(self, phase: str) -> None:
        if self.ctx.metrics is not None:
            self.ctx.metrics.timed_out(phase, self.requests)

    def _expire(self) -> None:
        config = self.ctx.config
        where = self.client[0] if self.client else "-"
        self._timed_out(self.phase.value)  # idle (silent or keep-alive) or head
        if self.phase is _HEAD:
            timeout = config.header_timeout
            error_logger.info("head timeout (%gs) for %s: 408, closed", timeout, where)
            self._answer(408, "head timeout")
            return
        what = "keep-alive" if self.requests else "silent connection"
        error_logger.debug("%s timeout for %s: closed", what, where)
        self.close()


class BufferedHTTPConnection(HTTPConnection, asyncio.BufferedProtocol):
    """An HTTPConnection for asyncio's own loop, which reads it with ``recv_into`` into the
    context's one buffer (``get_buffer``) and copies out what came (``buffer_updated``).

    A plain Protocol there can cost three system calls a read besides the read: asyncio
    asks ``recv`` for 256 KiB, which allocates a fresh 256 KiB (``mmap`` while that is above
    malloc's threshold, which moves with what the process freed before), shrinks it to what
    came (``mremap``) and frees it later (``munmap``).  strace showed all three on every
    message of a WebSocket echo.  uvloop reads into a buffer of its own, so it keeps the
    plain Protocol (a call less a read).
    """

    __slots__ = ()
