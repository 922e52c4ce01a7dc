"""HTTPChannel: one client connection, from accept to close.

Threading contract (see also docs/design.md):

1. A channel is *owned* by at most one thread at a time.  A worker takes ownership with
   :meth:`claim` (under the channel's lock, and only of a parked channel) and gives it back
   with :meth:`park` or ends it with :meth:`close`.  Only the owner touches the socket, the
   buffer or the phase.
2. A parked channel's socket is armed in the server's shared epoll with EPOLLONESHOT, so the
   kernel reports its readiness once, to one worker thread, which then claims it.  A parked
   channel holds no thread: silent, idle and trickling connections cost only memory.
3. The owner does everything for a request: reads it, runs the application, writes the
   response.  No request crosses threads, so no queue, no hand-off and no wake-up is paid per
   request (waitress and gunicorn's gthread pay two); see docs/design.md for the numbers.
4. The sweeper thread claims only parked channels whose deadline has passed, and closes them.
   Deadlines are plain floats written by the owner and read by the sweeper.

A new channel starts parked but not armed.  The thread that accepted it claims the first of
its accepted batch and reads at once (the request usually came with the connection) and
arms the others, so idle threads take them.
"""

from __future__ import annotations

import contextlib
import enum
import io
import re
import socket
import threading
import time
from typing import TYPE_CHECKING

from kakehashi.errors import ClientDisconnected, RemoteProtocolError
from kakehashi.http1 import Framing, Request, maybe_parse_request_head, reader_for
from kakehashi.server.accesslog import body_length, first_line, request_line
from kakehashi.server.context import ServerContext, error_logger
from kakehashi.server.input import BufferedInput, StreamingInput
from kakehashi.server.sockio import send_all
from kakehashi.server.task import error_response, run_application

if TYPE_CHECKING:
    from kakehashi.server.poller import Poller

__all__ = ["HTTPChannel", "Phase"]

_RECV_BYTES = 64 * 1024
_EMPTY_LINES_RE = re.compile(rb"(?:\r\n)*")
# A body the application left unread is drained up to this much to keep the connection;
# beyond it, closing is cheaper than reading.
_DRAIN_BYTES = 1 << 20
# Error responses to a misbehaving client get this long to go out, no more.
_ERROR_SEND_TIMEOUT = 1.0


class Phase(enum.Enum):
    IDLE = "idle"  # waiting for the first byte of a request (fresh or kept alive)
    HEAD = "head"  # part of a request head has arrived
    BODY = "body"  # head done, reading a small body before running the application


class HTTPChannel:
    """One connection.  Attributes other than ``lock``, ``owned`` and ``closed`` belong to
    the owning thread; ``deadline`` and ``phase`` are also read by the sweeper, which only
    acts on them after claiming the channel."""

    __slots__ = (
        "_body",
        "_body_got",
        "_pending",
        "buf",
        "closed",
        "ctx",
        "deadline",
        "fd",
        "lock",
        "owned",
        "peer",
        "phase",
        "poller",
        "registered",
        "requests",
        "sock",
    )

    def __init__(
        self, sock: socket.socket, peer: tuple[str, int], ctx: ServerContext, poller: Poller
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.ctx = ctx
        self.poller = poller
        self.lock = threading.Lock()
        self.owned = False  # parked, though not armed yet: the accepting thread claims it
        self.closed = False
        self.registered = False
        self.buf = b""
        self.phase = Phase.IDLE
        self.deadline = time.monotonic() + ctx.config.header_timeout
        self.requests = 0
        self._pending: Request | None = None
        self._body = bytearray()
        self._body_got = 0

    # -- ownership ---------------------------------------------------------------------------

    def claim(self) -> bool:
        """Take ownership of a parked channel; False if another thread has it or it closed."""
        with self.lock:
            if self.owned or self.closed:
                return False
            self.owned = True
            return True

    def park(self) -> None:
        """Give the channel back to the poller until the client sends more."""
        if self.ctx.stopping:
            self.close()
            return
        with self.lock:
            self.owned = False
            self.poller.arm(self)

    def rearm(self) -> None:
        """Arm a parked channel from any thread (a new one, not armed yet); no-op if owned."""
        with self.lock:
            if not self.owned and not self.closed:
                self.poller.arm(self)

    def close(self) -> None:
        """End the connection (owner only)."""
        with self.lock:
            self.closed = True
        self.poller.forget(self)
        self.sock.close()

    # -- reading -----------------------------------------------------------------------------

    def run(self) -> None:
        """Handle readiness (owner only); parks or closes the channel before returning."""
        try:
            keep = self._read_body() if self.phase is Phase.BODY else self._read_head()
        except ClientDisconnected as exc:
            error_logger.debug("client %s went away: %s", self.peer[0], exc)
            keep = False
        except Exception:  # a bug of ours: log it, drop this connection, keep serving
            error_logger.exception("internal error on a connection from %s", self.peer[0])
            keep = False
        if keep:
            self.park()
        else:
            self.close()

    def _read_head(self) -> bool:
        try:
            data = self.sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False  # the client closed; nothing it sent is waiting for an answer
        if self.buf:
            self.buf += data
            # A head can only complete, or a line be judged, once an LF arrives; before that
            # only its size can be wrong.  Not re-parsing until then keeps a head trickled in
            # tiny pieces linear instead of quadratic.
            limits = self.ctx.limits
            line_done = self.buf.find(b"\n", 0, limits.max_request_line_bytes) >= 0
            limit = limits.max_header_bytes if line_done else limits.max_request_line_bytes
            if b"\n" not in data and len(self.buf) <= limit:
                return True
        else:
            self.buf = data
        return self._serve_buffered()

    def _serve_buffered(self) -> bool:
        """Serve every complete request in the buffer, in order (pipelining)."""
        limits = self.ctx.limits
        while True:
            try:
                parsed = maybe_parse_request_head(self.buf, 0, limits)
            except RemoteProtocolError as exc:
                self._refuse(exc)
                return False
            if parsed is None:
                if self.buf[:2] == b"\r\n":
                    # RFC 9112 §2.2: empty lines before a request are ignored; dropping them
                    # here means a stream of them is never rescanned (the head timer, which
                    # they do not reset, bounds how long a client may send them).
                    skipped = _EMPTY_LINES_RE.match(self.buf)
                    if skipped is not None:
                        self.buf = self.buf[skipped.end() :]
                if self.phase is Phase.IDLE:
                    self.phase = Phase.HEAD
                    if self.requests:  # a fresh connection's head timer runs from accept
                        self.deadline = time.monotonic() + self.ctx.config.header_timeout
                return True
            request, end = parsed
            if not self._serve_one(request, end):
                return False
            if self.phase is Phase.BODY:
                return True
            if not self.buf:
                self.phase = Phase.IDLE
                self.deadline = time.monotonic() + self.ctx.config.keep_alive
                return True
            self.phase = Phase.IDLE  # a pipelined request follows: its timer starts now
            self.deadline = time.monotonic() + self.ctx.config.header_timeout

    def _serve_one(self, request: Request, end: int) -> bool:
        """Run one request whose head ends at ``buf[end]``; False to close the connection."""
        self.requests += 1
        config = self.ctx.config
        if request.framing is Framing.NONE:
            self.buf = self.buf[end:]
            return run_application(self.ctx, self.sock, self.peer, request, io.BytesIO())
        length = request.content_length or 0
        if (
            request.framing is Framing.LENGTH
            and length <= config.buffer_body_size
            and not request.expect_continue
        ):
            body_end = end + length
            if len(self.buf) >= body_end:
                body = io.BytesIO(self.buf[end:body_end])
                self.buf = self.buf[body_end:]
                return run_application(self.ctx, self.sock, self.peer, request, body)
            # Read the rest of the body while parked, holding no thread.
            self._pending = request
            self._body = bytearray(length)
            got = len(self.buf) - end
            self._body[:got] = self.buf[end:]
            self._body_got = got
            self.buf = b""
            self.phase = Phase.BODY
            self.deadline = time.monotonic() + config.body_timeout
            return True
        return self._serve_streaming(request, end)

    def _serve_streaming(self, request: Request, end: int) -> bool:
        stream = StreamingInput(
            self.sock,
            reader_for(request.framing, request.content_length, self.ctx.limits),
            self.buf[end:],
            self.ctx.config.body_timeout,
            request.expect_continue,
        )
        self.buf = b""
        keep = run_application(self.ctx, self.sock, self.peer, request, stream)
        if stream.error is not None:  # answered by run_application (or by the app)
            return False
        if keep and not stream.done:
            keep = stream.drain(_DRAIN_BYTES)
        self.buf = stream.leftover() if keep else b""
        return keep

    def _read_body(self) -> bool:
        view = memoryview(self._body)[self._body_got :]
        try:
            count = self.sock.recv_into(view)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            view.release()  # the buffer is read from below: no view may outlive this
        if not count:
            return False  # the client gave up mid-body
        self._body_got += count
        if self._body_got < len(self._body):
            self.deadline = time.monotonic() + self.ctx.config.body_timeout
            return True
        request, body = self._pending, BufferedInput(self._body)
        assert request is not None
        self._pending, self._body, self.phase = None, bytearray(), Phase.IDLE
        try:
            keep = run_application(self.ctx, self.sock, self.peer, request, body)
        finally:
            body.close()
        if not keep:
            return False
        self.deadline = time.monotonic() + self.ctx.config.keep_alive
        return True

    # -- refusing and expiring ---------------------------------------------------------------

    def _refuse(self, exc: RemoteProtocolError) -> None:
        """Answer a protocol error with its status; the caller closes the connection."""
        error_logger.info("%d for %s: %s", exc.status_hint, self.peer[0] or "-", exc)
        page, sent = error_response(self.ctx, exc.status_hint, str(exc)), 0
        with contextlib.suppress(ClientDisconnected):
            send_all(self.sock, page, _ERROR_SEND_TIMEOUT)
            sent = body_length(page)
        line = first_line(self.buf, self.ctx.limits.max_request_line_bytes)
        self.ctx.access.refused(self.peer[0], exc.status_hint, sent, line)

    def expire(self) -> None:
        """The deadline passed while parked (called by the sweeper after claiming)."""
        config = self.ctx.config
        if self.phase is Phase.IDLE:
            timeout, what = (
                (config.keep_alive, "keep-alive")
                if self.requests
                else (config.header_timeout, "silent connection")
            )
            error_logger.debug("%s timeout (%gs) for %s: closed", what, timeout, self.peer[0])
        else:
            timeout = config.header_timeout if self.phase is Phase.HEAD else config.body_timeout
            error_logger.info(
                "%s timeout (%gs) for %s: 408, closed", self.phase.value, timeout, self.peer[0]
            )
            page, sent = error_response(self.ctx, 408, f"{self.phase.value} timeout"), 0
            try:
                if self.sock.send(page) == len(page):
                    sent = body_length(page)
            except OSError:
                pass  # best effort: the client is slow by definition
            pending = self._pending
            limit = self.ctx.limits.max_request_line_bytes
            line = request_line(pending) if pending is not None else first_line(self.buf, limit)
            self.ctx.access.refused(self.peer[0], 408, sent, line)
        self.close()
