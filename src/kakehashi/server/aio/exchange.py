"""Exchange: one request on the asyncio engine, from its head to the application's return.

The application runs in a task of its own (created by the connection); its ``receive`` and
``send`` are this object's methods.  What it sends is checked and framed by the sans-I/O
:class:`kakehashi.asgi.HTTPCycle`; the request body comes from the connection, de-chunked by
kakehashi.http1's readers.

Rules kept here (docs/asgi.md; tests in tests/integration/test_asgi_rules.py):

1. ``receive()`` returns the body as it arrives, ``more_body`` True until its end; then
   ``http.disconnect`` once the client is gone or the response is complete, so it never
   blocks forever.  ``100 Continue`` goes out when the application first waits for a body
   the client holds back.
2. ``send()`` waits while the connection's unsent bytes are above the transport's
   high-water mark, and raises ClientDisconnected (an OSError) once the client is gone.
3. The application raises: a 500 if nothing was sent, else the connection is cut; the
   traceback is logged, unless the error is the client leaving.  It returns without a
   complete response: the same.

Owned by the event loop's thread, like its connection.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kakehashi.asgi import HTTPCycle, PathSend, Phase, error_page
from kakehashi.errors import ClientDisconnected, LocalProtocolError
from kakehashi.http1 import ChunkedReader, EndOfMessage, ReceiveBuffer, Request
from kakehashi.server.aio._shared import body_length
from kakehashi.server.aio.context import error_logger
from kakehashi.server.aio.record import record

if TYPE_CHECKING:
    from kakehashi.server.aio.connection import HTTPConnection

__all__ = ["Exchange"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Body pieces waiting for the application are joined into one message up to this size; a
# piece this big goes alone, as received.  uvloop hands several reads of a big upload to
# data_received in one turn: joining them all copied each 1 MiB POST into fresh memory
# (page faults, 2.6x the server CPU of the asyncio loop); small pieces (a chunked upload's)
# are still joined, so an application is not woken per kilobyte.
_JOIN_BELOW = 64 * 1024
# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_DONE, _FILE = Phase.DONE, Phase.FILE


class Exchange:
    """One request and its response.  ``chunks``/``buffered`` hold body bytes the
    application has not taken; ``remaining`` counts a Content-Length body still to come."""

    __slots__ = (
        "_waiter",
        "body_done",
        "buffered",
        "chunks",
        "conn",
        "continue_needed",
        "cycle",
        "discard",
        "disconnected",
        "final_sent",
        "page_bytes",
        "page_status",
        "progressed",
        "rbuf",
        "reader",
        "received",
        "remaining",
        "request",
        "scope",
        "started",
        "task",
    )

    def __init__(
        self, conn: HTTPConnection, request: Request, scope: dict[str, Any], cycle: HTTPCycle
    ) -> None:
        self.conn = conn
        self.request = request
        self.scope = scope
        self.cycle = cycle
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.body_done = True
        self.final_sent = False  # the last http.request message went to the application
        self.disconnected = False
        self.discard = False  # the response is done: the rest of the body is read and dropped
        self.continue_needed = False
        self.remaining = 0
        self.reader: ChunkedReader | None = None
        self.rbuf: ReceiveBuffer | None = None
        ctx = conn.ctx
        self.progressed = ctx.now
        # The coarse clock is enough for the body's pace; a duration reported wants better,
        # and not the loop's time: uvloop's stands still for a whole pass of the loop, so a
        # request served within one pass would last 0 s (both are CLOCK_MONOTONIC).
        self.started = time.monotonic() if ctx.recorded else ctx.now
        self.page_status = 0  # an error page went out instead of the application's response
        self.page_bytes = 0  # its body bytes
        self.received = 0
        self._waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- the body, fed by the connection -----------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take body bytes; returns what lies past the body's end (a pipelined request).

        Raises:
            RemoteProtocolError: a malformed chunked body, or one over the size limit.
        """
        self.progressed = self.conn.ctx.now
        reader = self.reader
        if reader is None:  # Content-Length
            remaining = self.remaining
            if len(data) > remaining:
                data, rest = data[:remaining], data[remaining:]
            else:
                rest = b""
            self.remaining = remaining - len(data)
            self._take(data)
            if not self.remaining:
                self.body_done = True
        else:
            rbuf = self.rbuf
            assert rbuf is not None
            rbuf.append(data)
            rest = b""
            while (event := reader.read(rbuf)) is not None:
                if isinstance(event, EndOfMessage):  # request trailers: ASGI has no place
                    self.body_done = True
                    rest = bytes(rbuf)
                    self.reader = self.rbuf = None
                    break
                self._take(event.data)
        self._wake()
        return rest

    def _take(self, data: bytes) -> None:
        self.received += len(data)
        if data and not self.discard:
            self.chunks.append(data)
            self.buffered += len(data)

    def client_gone(self) -> None:
        """The client closed or the connection failed: receive() says so from now on."""
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the application's side --------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.chunks or (self.body_done and not self.final_sent):
                return self._body_message()
            if self.disconnected or (self.final_sent and self.cycle.phase is _DONE):
                return {"type": "http.disconnect"}
            if self.continue_needed:
                self.continue_needed = False
                if not self.cycle.head_sent and not self.conn.closing:
                    self.conn.write(_CONTINUE)  # RFC 9110 §10.1.1: only when it is read
            waiter = self._waiter = self.conn.ctx.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def _body_message(self) -> dict[str, Any]:
        chunks = self.chunks
        if len(chunks) <= 1:
            data = chunks[0] if chunks else b""
            self.chunks = []
        else:
            taken, size = 0, 0
            for piece in chunks:
                if taken and size + len(piece) > _JOIN_BELOW:
                    break
                taken, size = taken + 1, size + len(piece)
            data = chunks[0] if taken == 1 else b"".join(chunks[:taken])
            self.chunks = chunks[taken:]
        if self.buffered:
            self.buffered -= len(data)
            self.conn.body_taken()
        more = bool(self.chunks) or not self.body_done
        self.final_sent = not more
        return {"type": "http.request", "body": data, "more_body": more}

    async def send(self, message: Mapping[str, Any]) -> None:
        conn = self.conn
        # The transport knows first: a send that failed (a reset) closed it at once, and
        # connection_lost only comes on the loop's next turn, which an application that
        # never waits (nothing paused its writing) would not reach before its last send.
        if self.disconnected or conn.transport.is_closing():
            # Spec 2.4: an OSError subclass, which the server does not log as an error.
            raise ClientDisconnected("the client is gone")
        out = self.cycle.send(message)
        cls = out.__class__
        if cls is bytes:
            if out:  # conn.write() inlined: the one write of most responses
                conn.transport.write(out)
                conn.written += len(out)  # type: ignore[arg-type]
        elif cls is list:
            conn.writelines(out)  # type: ignore[arg-type]
        else:
            await self._send_file(out)  # type: ignore[arg-type]
        if self.cycle.phase is _DONE:
            # Not waited for: the last piece is bounded, and an application's work after
            # its response (Starlette's background tasks) must not fail on a reader.
            conn.response_done(self)
        elif conn.write_paused:
            await conn.drain()

    async def _send_file(self, action: PathSend) -> None:
        try:
            file = open(action.path, "rb")  # noqa: SIM115 - closed below, across awaits
        except OSError as exc:
            raise LocalProtocolError(f"pathsend: cannot open {action.path}: {exc}") from exc
        with file:
            head, count = self.cycle.file_head(os.fstat(file.fileno()).st_size)
            self.conn.write(head)
            if count:
                await self.conn.send_file(file, count)

    async def run(self) -> None:
        """Call the application; whatever happens, the request ends here (rule 3)."""
        conn = self.conn
        ctx = conn.ctx
        failed = False
        try:
            await ctx.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._failed(None, "cancelled")  # the engine cut it (shutdown, a dropped reader)
        except Exception as exc:
            failed = self._failed(exc, "")
        else:
            if self.cycle.phase is not _DONE:
                self._failed(None, "returned without a complete response")
        finally:
            ctx.in_flight -= 1
            if self.task is not None:
                ctx.tasks.discard(self.task)
            if ctx.recorded:  # the access line and the metrics (record.py)
                record(self, failed)

    def _failed(self, exc: Exception | None, why: str) -> bool:
        """Log the failure and answer it if still possible; True for an application error
        (an exception that is not the client leaving)."""
        conn = self.conn
        cycle = self.cycle
        line = f"{self.request.method.decode('latin-1')} {self.request.target.decode('latin-1')}"
        gone = conn.closing or self.disconnected
        app_error = False
        if exc is not None and gone and isinstance(exc, OSError):
            error_logger.debug("%s: the client left (%s)", line, exc)
        elif exc is not None:
            app_error = True
            error_logger.error("Exception in ASGI application (%s)", line, exc_info=exc)
        elif why != "cancelled" and not gone:
            error_logger.error("ASGI application %s (%s)", why, line)
        if gone or cycle.phase is _DONE:
            return app_error  # nothing to answer; or a failure after the response
        if cycle.head_sent or cycle.phase is _FILE:
            conn.abort()  # never present a cut response as complete
            return app_error
        detail = "the application failed"
        if exc is not None and conn.ctx.config.expose_tracebacks:
            detail = "".join(traceback.format_exception(exc))
        cycle.phase = _DONE
        cycle.status = 500
        self.write_error_page(500, detail)
        conn.close()
        return app_error

    def write_error_page(self, status: int, detail: str) -> None:
        """Write an error page in place of the response (nothing of it went out yet)."""
        page = error_page(status, detail, self.conn.ctx.date)
        self.page_status, self.page_bytes = status, body_length(page)
        self.conn.write(page)
