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
5. A response the client has not taken when the application is done stays in ``out`` (an
   OutputBuffer) and the channel parks in Phase.WRITE, armed for EPOLLOUT: whichever worker
   gets the event claims it, sends without blocking, and parks it again until ``out`` is
   empty; then the channel goes on as after any response.  The application's iterator never
   reaches the channel: it ended on the thread that started it.

A new channel starts parked but not armed.  The thread that accepted it claims the first of
its accepted batch and reads at once (the request usually came with the connection) and
arms the others, so idle threads take them.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time

from kakehashi.errors import ClientDisconnected, RemoteProtocolError
from kakehashi.http1 import (
    ContentLengthReader,
    Framing,
    Request,
    maybe_parse_request_head,
    reader_for,
)
from kakehashi.server.edge.proxy_protocol import expect_proxy_header
from kakehashi.server.net.sockio import send_all
from kakehashi.server.observe.accesslog import body_length, first_line, request_line
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.input import CONTINUE, BufferedInput, StreamingInput
from kakehashi.server.threads.outbuf import OutputBuffer, log_dropped
from kakehashi.server.threads.parked_body import ParkedBody
from kakehashi.server.threads.poller import WAIT_READ, WAIT_WRITE, Phase, Poller
from kakehashi.server.threads.task import error_response, run_application

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_CHUNKED = Framing.CHUNKED
_LENGTH = Framing.LENGTH
_NO_BODY = Framing.NONE
_BODY = Phase.BODY
_HEAD = Phase.HEAD
_IDLE = Phase.IDLE
_WRITE = Phase.WRITE

__all__ = ["WAIT_READ", "WAIT_WRITE", "HTTPChannel", "Phase"]

_RECV_BYTES = 64 * 1024
_EMPTY_LINES_RE = re.compile(rb"(?:\r\n)*")
# A body the application left unread is drained up to this much to keep the connection;
# beyond it, closing is cheaper than reading.
_DRAIN_BYTES = 1 << 20
# Error responses to a misbehaving client get this long to go out, no more.
_ERROR_SEND_TIMEOUT = 1.0


class HTTPChannel:
    """One connection.  Attributes other than ``lock``, ``owned`` and ``closed`` belong to
    the owning thread; ``deadline`` and ``phase`` are also read by the sweeper, which only
    acts on them after claiming the channel."""

    __slots__ = (
        "_body",
        "_close_after",
        "buf",
        "closed",
        "ctx",
        "deadline",
        "fd",
        "lock",
        "out",
        "owned",
        "peer",
        "phase",
        "poller",
        "proxy_pending",
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
        self.phase = _IDLE
        self.deadline = time.monotonic() + ctx.config.header_timeout
        self.requests = 0
        self._body: ParkedBody | None = None
        self.out: OutputBuffer | None = None  # a response waiting for the client (WRITE)
        self._close_after = False
        self.proxy_pending = ctx.config.proxy_protocol != "off"  # see _read_proxy_header

    # -- ownership ---------------------------------------------------------------------------

    def claim(self) -> bool:
        """Take ownership of a parked channel; False if another thread has it or it closed."""
        with self.lock:
            if self.owned or self.closed:
                return False
            self.owned = True
            return True

    def park(self) -> None:
        """Give the channel back to the poller until the client sends more (or, in
        Phase.WRITE, until it can take more)."""
        if self.ctx.stopping:
            self.linger(self.ctx.linger_until)
        with self.lock:
            self.owned = False
            self.poller.arm(self)

    def linger(self, until: float) -> None:
        """On shutdown: an idle connection is closed at ``until`` (any thread may lower it;
        the sweeper acts on it).  A request that arrives before is served."""
        if self.phase is _IDLE and self.deadline > until:
            self.deadline = until

    def rearm(self) -> None:
        """Arm a parked channel from any thread (a new one, not armed yet); no-op if owned."""
        with self.lock:
            if not self.owned and not self.closed:
                self.poller.arm(self)

    def close(self) -> None:
        """End the connection (owner only)."""
        with self.lock:
            self.closed = True
        if self._body is not None:
            self._body.discard()
            self._body = None
        if self.out is not None:
            self.out.discard()
            self.out = None
        self.poller.forget(self)
        self.sock.close()

    # -- reading -----------------------------------------------------------------------------

    def run(self) -> None:
        """Handle readiness (owner only); parks or closes the channel before returning."""
        try:
            if self.phase is _WRITE:
                keep = self._write_more()
            else:
                keep = self._read_body() if self.phase is _BODY else self._read_head()
            while self.out is not None and self.phase is not _WRITE:
                keep = self._write_later(keep)
        except ClientDisconnected as exc:
            error_logger.debug("client %s went away: %s", self.peer[0], exc)
            keep = False
        except BaseException:  # a bug of ours: log it, drop this connection, keep serving
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
        if self.proxy_pending:
            return self._read_proxy_header(data)
        if self.buf:
            self.buf += data
            # A head can only complete, or a line be judged, once an LF arrives; before that
            # only its size can be wrong.  Not re-parsing until then keeps a head trickled in
            # tiny pieces linear instead of quadratic.
            limits = self.ctx.limits
            line_done = self.buf.find(b"\n", 0, limits.max_request_line_bytes) >= 0
            limit = limits.max_header_bytes if line_done else limits.max_request_line_bytes
            if data.find(b"\n") < 0 and len(self.buf) <= limit:
                return True
        else:
            self.buf = data
        return self._serve_buffered()

    def _read_proxy_header(self, data: bytes) -> bool:
        """A PROXY protocol header (proxy_protocol.py) before the first request: its source
        becomes the peer.  Bad or not allowed: closed, without a response."""
        self.buf += data
        config = self.ctx.config
        try:
            found = expect_proxy_header(
                self.buf, self.peer, config.proxy_protocol, config.proxy_allow_from
            )
        except RemoteProtocolError as exc:
            error_logger.info("connection from %s closed: %s", self.peer[0] or "unix", exc)
            return False
        if found is None:
            return True  # more to come, within the header timeout
        self.peer, end = found
        self.buf = self.buf[end:]
        self.proxy_pending = False
        return self._serve_buffered() if self.buf else True

    def _serve_buffered(self) -> bool:
        """Serve every complete request in the buffer, in order (pipelining)."""
        limits = self.ctx.limits
        while True:
            try:
                parsed = maybe_parse_request_head(self.buf, 0, limits, None, self.ctx.heads)
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
                if self.phase is _IDLE:
                    self.phase = _HEAD
                    if self.requests:  # a fresh connection's head timer runs from accept
                        self.deadline = time.monotonic() + self.ctx.config.header_timeout
                return True
            request, end = parsed
            if not self._serve_one(request, end):
                return False
            if self.phase is _BODY:
                return True
            self.phase = _IDLE
            if self.out is not None:
                return True  # what is pipelined waits until this response is sent (run)
            if not self.buf:
                self.deadline = time.monotonic() + self.ctx.config.keep_alive
                return True
            # a pipelined request follows: its timer starts now
            self.deadline = time.monotonic() + self.ctx.config.header_timeout

    def _serve_one(self, request: Request, end: int) -> bool:
        """Run one request whose head ends at ``buf[end]``; False to close the connection."""
        self.requests += 1
        framing = request.framing
        if framing is _NO_BODY:
            self.buf = self.buf[end:]
            return run_application(
                self.ctx, self.sock, self.peer, request, io.BytesIO(), self,
                pipelined=bool(self.buf),
            )  # fmt: skip
        if framing is _CHUNKED:
            # A chunked body is read whole before the application runs (parked_body.py), so
            # a 100-continue client is asked for it now: the application cannot ask later.
            if request.expect_continue:
                send_all(self.sock, CONTINUE, self.ctx.config.send_timeout)
        elif request.expect_continue:
            return self._serve_streaming(request, end)
        elif framing is _LENGTH:
            length = request.content_length or 0
            if length > self.ctx.config.buffer_body_size:
                return self._serve_streaming(request, end)
            body_end = end + length
            if len(self.buf) >= body_end:  # the common case: the body came with its head
                body = io.BytesIO(self.buf[end:body_end])
                self.buf = self.buf[body_end:]
                return run_application(
                    self.ctx, self.sock, self.peer, request, body, self, pipelined=bool(self.buf)
                )
        # Read the rest of the body while parked, holding no thread.
        parked = ParkedBody(
            request,
            self.buf[end:],
            self.ctx.body_budget,
            self.ctx.limits,
            self.ctx.config.buffer_body_size,
        )
        self.buf = b""
        return self._advance_body(parked)

    def _serve_streaming(self, request: Request, end: int) -> bool:
        reader = reader_for(request.framing, request.content_length, self.ctx.limits)
        config = self.ctx.config
        stream = StreamingInput(
            self.sock, reader, self.buf[end:], config.body_timeout, request.expect_continue,
            min_rate=config.body_min_rate,
        )  # fmt: skip
        self.buf = b""
        return self._run_streaming(request, stream)

    def _run_streaming(self, request: Request, stream: StreamingInput) -> bool:
        keep = run_application(self.ctx, self.sock, self.peer, request, stream, self)
        if stream.error is not None:  # answered by run_application (or by the app)
            return False
        if keep and not stream.done:
            keep = stream.drain(_DRAIN_BYTES)
        self.buf = stream.leftover() if keep else b""
        return keep

    def _advance_body(self, body: ParkedBody) -> bool:
        """Run the application once the body is complete; read on while the client's bytes
        are there (a fast client's body is read in one turn), else park until more arrive."""
        self._body, self.phase = body, _BODY  # from here close() gives the budget back
        while True:
            try:
                done = body.complete()
            except RemoteProtocolError as exc:
                self._refuse(exc, body.request)
                return False
            except OSError as exc:  # the spool file: our failure, not the client's
                error_logger.error("cannot store a request body from %s: %s", self.peer[0], exc)
                self._answer_error(500, "the body could not be stored", request_line(body.request))
                return False
            if done or body.hand_over:
                self._body, self.phase = None, _IDLE
                return self._run_parked(body) if done else self._hand_over(body)
            try:
                count = body.receive(self.sock)
            except BlockingIOError:
                break
            except OSError:
                return False
            if not count and not body.hand_over:
                return False  # the client gave up mid-body
        self.deadline = self._body_deadline(body)
        return True

    def _body_deadline(self, body: ParkedBody) -> float:
        """No byte for ``body_timeout``, or an average below ``body_min_rate`` once the body
        has taken ``body_timeout``: whichever comes first."""
        config = self.ctx.config
        deadline = body.progressed + config.body_timeout
        if config.body_min_rate:
            rate_bound = body.started + config.body_timeout + body.received / config.body_min_rate
            deadline = min(deadline, rate_bound)
        return deadline

    def _read_body(self) -> bool:
        body = self._body
        assert body is not None
        if not self._advance_body(body):
            return False
        if self.phase is _BODY or self.out is not None:
            return True  # more body to come, or the response waits to go out (run)
        return self._go_on()

    def _run_parked(self, body: ParkedBody) -> bool:
        """The whole body is here (in memory, or spooled to a file): run the application."""
        data = body.body()
        self.buf = body.leftover()
        # A de-chunked body gets its decoded length (Django reads only CONTENT_LENGTH).
        length = body.received if body.length is None else None
        spool = body.spool
        stream = BufferedInput(data, body.received) if spool is None else spool.reader()
        try:
            return run_application(
                self.ctx, self.sock, self.peer, body.request, stream, self, body_length=length
            )
        finally:
            stream.close()
            body.recycle()

    def _hand_over(self, body: ParkedBody) -> bool:
        """A ``Content-Length`` body the budget cannot hold: the application streams it."""
        rest = body.handover()
        config = self.ctx.config
        stream = StreamingInput(
            self.sock, ContentLengthReader(rest.remaining), b"", config.body_timeout, False,
            prefix=rest.prefix, min_rate=config.body_min_rate,
        )  # fmt: skip
        return self._run_streaming(body.request, stream)

    # -- writing what the client has not taken yet -------------------------------------------

    def _write_later(self, keep: bool) -> bool:
        """After a response: park for writing if part of it waits (True), else go on."""
        out = self.out
        assert out is not None
        if out.complete and out.total:
            self._close_after = not keep or out.truncated
            self.phase = _WRITE
            self.deadline = out.pace.deadline()
            return True
        out.discard()  # all sent already, or cut short (then keep is False)
        self.out = None
        return keep and self._go_on()

    def _write_more(self) -> bool:
        """The socket is writable: send without blocking; park again, or go on when done."""
        out = self.out
        assert out is not None
        sent = out.send(self.sock)
        now = time.monotonic()
        out.pace.record(sent, now)
        if out.total:
            if reason := out.pace.broken(now, out.total):
                log_dropped(self.phase.value, self.peer, out, reason)
                return False
            self.deadline = out.pace.deadline()
            return True
        out.discard()  # closes spool files; a file_wrapper's file is closed once sent
        self.out = None
        return not (self._close_after or out.truncated) and self._go_on()

    def _go_on(self) -> bool:
        """As after any response: serve what was pipelined, else wait for the next request."""
        self.phase = _IDLE
        if self.buf:
            self.deadline = time.monotonic() + self.ctx.config.header_timeout
            return self._serve_buffered()
        self.deadline = time.monotonic() + self.ctx.config.keep_alive
        return True

    # -- refusing and expiring ---------------------------------------------------------------

    def _refuse(self, exc: RemoteProtocolError, request: Request | None = None) -> None:
        """Answer a protocol error with its status; the caller closes the connection.
        ``request``: the request whose body broke (for its access line)."""
        error_logger.info("%d for %s: %s", exc.status_hint, self.peer[0] or "-", exc)
        if self.ctx.metrics is not None:
            self.ctx.metrics.refused(exc.status_hint)
        if request is not None:
            line = request_line(request)
        else:
            line = first_line(self.buf, self.ctx.limits.max_request_line_bytes)
        self._answer_error(exc.status_hint, str(exc), line)

    def _answer_error(self, status: int, detail: str, line: str) -> None:
        """Send an error page (best effort) and its access line; the caller closes."""
        page, sent = error_response(self.ctx, status, detail), 0
        with contextlib.suppress(ClientDisconnected):
            send_all(self.sock, page, _ERROR_SEND_TIMEOUT)
            sent = body_length(page)
        self.ctx.access.refused(self.peer[0], status, sent, line)

    def expire(self) -> None:
        """The deadline passed while parked (called by the sweeper after claiming)."""
        config = self.ctx.config
        if self.phase is _WRITE:
            self._expire_write()
            return
        if self.phase is _IDLE and self.ctx.stopping and self._has_data():
            self.park()  # a request arrived as the linger ran out: a worker serves it
            return
        if self.ctx.metrics is not None:
            self.ctx.metrics.timed_out(self.phase.value, self.requests)
        if self.phase is _IDLE:
            timeout, what = (
                (config.keep_alive, "keep-alive")
                if self.requests
                else (config.header_timeout, "silent connection")
            )
            error_logger.debug("%s timeout (%gs) for %s: closed", what, timeout, self.peer[0])
        elif (
            self.phase is _BODY
            and self._body is not None
            and (time.monotonic() - self._body.progressed < config.body_timeout)
        ):
            error_logger.info(
                "body slower than %d B/s (%d bytes in %.1fs) for %s: 408, closed",
                config.body_min_rate,
                self._body.received,
                time.monotonic() - self._body.started,
                self.peer[0],
            )
            self._send_408("body too slow")
        else:
            timeout = config.header_timeout if self.phase is _HEAD else config.body_timeout
            error_logger.info(
                "%s timeout (%gs) for %s: 408, closed", self.phase.value, timeout, self.peer[0]
            )
            self._send_408(f"{self.phase.value} timeout")
        self.close()

    def _has_data(self) -> bool:
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except OSError:  # BlockingIOError: nothing yet; anything else: broken
            return False

    def _send_408(self, detail: str) -> None:
        page, sent = error_response(self.ctx, 408, detail), 0
        try:
            if self.sock.send(page) == len(page):
                sent = body_length(page)
        except OSError:
            pass  # best effort: the client is slow by definition
        body = self._body
        limit = self.ctx.limits.max_request_line_bytes
        line = request_line(body.request) if body is not None else first_line(self.buf, limit)
        self.ctx.access.refused(self.peer[0], 408, sent, line)

    def _expire_write(self) -> None:
        """A parked response's reader broke the progress or rate rule: drop it."""
        out = self.out
        assert out is not None
        reason = out.pace.broken(time.monotonic(), out.total)
        if not reason:  # the deadline was met after all: wait on
            self.deadline = out.pace.deadline()
            self.park()
            return
        log_dropped(self.phase.value, self.peer, out, reason)
        self.close()
