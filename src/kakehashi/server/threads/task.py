"""Running the application for one request and sending its response (PEP 3333).

No parsing and no polling here: the channel hands over a parsed request, its body stream and
the socket it owns; this module calls the application, frames what it returns with
kakehashi.http1's rules (``decide_response_framing``) and writes it straight to the socket
from the worker thread that owns the connection (see channel.py for why that is safe).  What
the kernel does not take is queued in the connection's OutputBuffer (outbuf.py): the thread is
free once the iterator ends, and the connection sends the rest when the socket is writable.

Error rules: an application error before the head is sent becomes a 500 (with the traceback
only when ``expose_tracebacks`` is set) and the connection closes; after the head is sent,
the connection is aborted, so the client sees a truncated response and never a wrong one.
A client that goes away is not an error: the response is dropped quietly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import traceback
from collections.abc import Iterable
from typing import Any

from kakehashi.errors import ClientDisconnected, LocalProtocolError, RemoteProtocolError
from kakehashi.http1 import Framing, Request, decide_response_framing, reason_phrase
from kakehashi.server.engine.pace import SendPace
from kakehashi.server.net.sockio import send_all, send_some, sendfile_some, wait_writable
from kakehashi.server.observe.accesslog import body_length, request_line
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.input import StreamingInput
from kakehashi.server.threads.outbuf import OutputBuffer, OutputSink, log_dropped
from kakehashi.wsgi import CONNECTION_CLOSE, FileWrapper, InputStream, StartResponse

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_CHUNKED = Framing.CHUNKED
_CLOSE = Framing.CLOSE
_LENGTH = Framing.LENGTH
_NO_BODY = Framing.NONE

__all__ = ["ResponseWriter", "error_response", "run_application"]

# Bodies from this size on go out with their head in one sendmsg instead of being joined to it.
_GATHER_BYTES = 16 * 1024


def error_response(ctx: ServerContext, status: int, detail: str = "") -> bytes:
    """A complete, short plain-text response that closes the connection."""
    reason = reason_phrase(status)
    body = b"%d %s\n" % (status, reason)
    if detail:
        body += detail.encode("utf-8", "replace")[:1024] + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        b"Connection: close\r\nDate: %s\r\nServer: kakehashi\r\n\r\n%s"
        % (status, reason, len(body), ctx.date_header(), body)
    )


class ResponseWriter:
    """Frames and sends one response; owned by the thread running the application.

    Bytes go straight to the socket while the kernel takes them.  What it refuses is queued
    in an OutputBuffer (outbuf.py), handed to ``sink`` (the connection) as soon as it exists;
    once the response is queued to its end the thread is free and the connection sends the
    rest when the socket is writable (channel.py).  Over the buffer's limit the application
    waits here, its thread sending, held to the progress and rate rules (pace.py).
    """

    __slots__ = (
        "_framing",
        "_remaining",
        "_wire",
        "body",
        "close_deferred",
        "ctx",
        "ended",
        "error_status",
        "head_sent",
        "keep_alive",
        "out",
        "peer",
        "pipelined",
        "request",
        "sent_body_bytes",
        "sink",
        "sock",
        "start",
    )

    def __init__(
        self,
        ctx: ServerContext,
        sock: socket.socket,
        request: Request,
        keep_alive: bool,
        peer: tuple[str, int] = ("", 0),
        sink: OutputSink | None = None,
    ) -> None:
        self.ctx = ctx
        self.sock = sock
        self.request = request
        self.keep_alive = keep_alive
        self.peer = peer
        self.sink = sink
        self.start = StartResponse(self.write, ctx.head_cache)
        self.head_sent = False
        self.sent_body_bytes = 0  # body bytes sent or queued (not framing, not the head)
        self.error_status = 0  # the status of an error page sent instead of the app's response
        self._framing = _NO_BODY
        self._remaining = 0
        self._wire = 0  # bytes this thread put on the wire itself
        self.body: object = None
        self.pipelined = False
        self.out: OutputBuffer | None = None
        self.close_deferred = False  # a file_wrapper's close waits for its region to go out
        self.ended = False  # the request is over: a write() the application kept is refused

    def _head(self, length: int | None) -> bytes:
        """The response head; ``length``: the body's, when the whole body is known."""
        start = self.start
        if not start.status_code:
            raise LocalProtocolError("the application sent a body before start_response")
        request = self.request
        lines = start.lines
        declared = start.content_length
        # An empty body in answer to HEAD says nothing about GET's length (frameworks return
        # one for a streamed view): no Content-Length then, never a false "0".
        if declared is None and length is not None and (length or request.method != b"HEAD"):
            declared = length
            lines = [*lines, b"Content-Length: %d\r\n" % length]
        out = decide_response_framing(
            request.method,
            request.http_version,
            self.keep_alive
            and not (self.ctx.stopping and not self.pipelined)
            # A 100-continue client still waiting to send a body the application never asked
            # for: the connection cannot be reused (input.py closes rather than ask for it).
            and not (type(self.body) is StreamingInput and self.body.awaiting_continue),
            start.status_code,
            declared,
            start.connection != 0,
            start.connection == CONNECTION_CLOSE,
        )
        self.keep_alive = out.keep_alive
        self._framing = out.framing
        self._remaining = out.content_length or 0
        if out.drop_length:  # a 1xx or 204 must not carry one (rare: the slow way)
            lines = [b"%s: %s\r\n" % f for f in start.headers if f[0].lower() != b"content-length"]
        extra = b"".join([b"%s: %s\r\n" % field for field in out.added]) if out.added else b""
        if not start.has_date:
            extra += b"Date: " + self.ctx.date_header() + b"\r\n"
        if not start.has_server:
            extra += b"Server: kakehashi\r\n"
        # Fields were validated by StartResponse (wsgi.py) with the same rules as
        # http1.validate_fields, so they are joined here without a second pass.
        start.headers_sent = self.head_sent = True
        return b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (
            start.status_code, start.reason, b"".join(lines), extra,
        )  # fmt: skip

    def _frame(self, data: bytes) -> bytes:
        framing = self._framing
        if framing is _CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing is _LENGTH:
            if len(data) > self._remaining:
                self.keep_alive = False
                error_logger.error(
                    "application sent more than its Content-Length; response truncated"
                )
                data = data[: self._remaining]
            self._remaining -= len(data)
            return data
        if framing is _NO_BODY:
            return b""
        return data

    def write(self, data: bytes) -> None:
        """Send a piece of body (also the ``write()`` callable of start_response)."""
        if type(data) is not bytes:
            raise LocalProtocolError(f"the application must yield bytes, not {type(data).__name__}")
        if self.ended:  # else its bytes would land in the connection's next response
            raise LocalProtocolError(_ENDED)
        if not data:
            return
        head = b"" if self.head_sent else self._head(None)
        framed = self._frame(data)
        self._send(head + framed if head else framed)
        self.sent_body_bytes += len(data) if self._framing is _CHUNKED else len(framed)

    def finish(self) -> None:
        """End the body; the connection is not reusable if the body fell short."""
        tail = b""
        if not self.head_sent:
            tail = self._head(0)
        if self._framing is _CHUNKED:
            tail += b"0\r\n\r\n"
        elif self._framing is _LENGTH and self._remaining:
            error_logger.error("application sent less than its Content-Length; closing")
            self.keep_alive = False
        elif self._framing is _CLOSE:
            self.keep_alive = False
        if tail:
            self._send(tail)

    def write_all(self, result: Iterable[bytes]) -> None:
        """Send (or queue) everything the application returned."""
        if type(result) is list or type(result) is tuple:
            self._write_known(result)
        elif type(result) is not FileWrapper or not self._try_sendfile(result):
            for chunk in result:
                self.write(chunk)
            self.finish()
        if self.out is not None:
            self._settle()

    def _write_known(self, result: list[bytes] | tuple[bytes, ...]) -> None:
        """A known body: one write with its length, no chunked coding."""
        body = b"".join(result) if len(result) != 1 else result[0]
        if type(body) is not bytes:
            raise LocalProtocolError("the application must return bytes")
        parts = [self._head(len(body)) if not self.head_sent else b"", self._frame(body)]
        sent = len(body) if self._framing is _CHUNKED else len(parts[1])
        if self._framing is _CHUNKED:
            parts.append(b"0\r\n\r\n")
        elif self._framing is _CLOSE:
            self.keep_alive = False
        elif self._framing is _LENGTH and self._remaining:
            error_logger.error("application sent less than its Content-Length; closing")
            self.keep_alive = False
        if len(body) >= _GATHER_BYTES:
            self._send_parts(parts)
        elif data := (parts[0] + parts[1] if len(parts) == 2 else b"".join(parts)):
            self._send(data)
        self.sent_body_bytes += sent

    def send_error_page(self, status: int, detail: str, timeout: float) -> None:
        """Answer with a short error page instead of the application's response."""
        page = error_response(self.ctx, status, detail)
        self.error_status = status
        with contextlib.suppress(ClientDisconnected):
            send_all(self.sock, page, timeout)
            self.sent_body_bytes = body_length(page)

    def logged_status(self) -> int:
        """The status that went out: the error page's, the application's once its head was
        sent, or nginx's 499 when the client left before any head."""
        if self.error_status:
            return self.error_status
        return self.start.status_code if self.head_sent else 499

    def _try_sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a real file with os.sendfile, when its size is known; False to iterate instead."""
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if not self.start.status_code or self.head_sent:
            return False
        self._send(self._head(size))
        if self._framing is not _LENGTH:
            if self._framing is _CHUNKED:  # the app gave another length: iterate
                for chunk in wrapper:
                    self.write(chunk)
                self.finish()
            return True
        count = min(size, self._remaining)
        self.sent_body_bytes = count
        self._remaining -= count
        self._send_file(wrapper, fd, offset, count)
        self.finish()
        return True

    # -- the write path: straight to the socket, or queued -----------------------------------

    def _send(self, data: bytes | memoryview) -> None:
        """Put ``data`` on the wire now, or behind what waits; the fast path is one send."""
        out = self.out
        if out is not None and out.total:
            self._pump(out)
            if out.total:
                out.append(data)
                if out.bounded > out.limit:
                    self._pause(out, out.limit // 2)
                return
        try:  # send_some, inlined: this is every response's send
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientDisconnected(f"send failed: {exc}") from exc
        self._wire += sent
        if sent != len(data):
            self._queue().append(memoryview(data)[sent:])
            self._waiting()

    def _send_parts(self, parts: list[bytes]) -> None:
        """Head and a large body: one sendmsg; the rest is queued by reference, not joined."""
        if self.out is not None and self.out.total:
            for part in parts:
                self._send(part)
            return
        sent = send_some(self.sock, parts)
        self._wire += sent
        if sent != sum(map(len, parts)):
            self._queue().hold(parts, sent)
            self._waiting()

    def _send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> None:
        """A file region: sendfile while the kernel takes it, then queued (closed once sent)."""
        if self.out is None or not self.out.total:
            sent, short = sendfile_some(self.sock, fd, offset, count)
            self._wire += sent
            if short:  # the file shrank: finish() reports the shortfall and closes
                self._remaining += count - sent
                self.sent_body_bytes -= count - sent
                return
            if sent == count:
                return
            offset, count = offset + sent, count - sent
            self._queue().add_file(fd, offset, count, wrapper.close)
            self._waiting()
        else:
            self.out.add_file(fd, offset, count, wrapper.close)
        self.close_deferred = True

    def _queue(self) -> OutputBuffer:
        """This connection's OutputBuffer (created, and given to the sink, on first need)."""
        if self.out is None:
            config = self.ctx.config
            pace = SendPace(config.send_timeout, config.send_min_rate, config.send_rate_window)
            self.out = OutputBuffer(config.output_buffer_memory, config.output_buffer_limit, pace)
            if self.sink is not None:
                self.sink.out = self.out
        return self.out

    def _waiting(self) -> None:
        """The buffer was empty and now holds bytes: the client's clocks start."""
        out = self.out
        assert out is not None
        out.pace.begin(time.monotonic(), out.total)
        if out.bounded > out.limit:
            self._pause(out, out.limit // 2)

    def _pump(self, out: OutputBuffer) -> None:
        """Send what the kernel takes now; drop a client that broke the pace rules."""
        sent = out.send(self.sock)
        now = time.monotonic()
        out.pace.record(sent, now)
        if out.total and (reason := out.pace.broken(now, out.total)):
            out.sent_direct = self._wire
            log_dropped("response", self.peer, out, reason)
            raise ClientDisconnected(f"slow reader dropped: {reason}")

    def _pause(self, out: OutputBuffer, resume: int) -> None:
        """Hold the application until no more than ``resume`` bounded bytes wait."""
        while out.bounded > resume:
            self._wait_and_pump(out)

    def _wait_and_pump(self, out: OutputBuffer) -> None:
        wait_writable(self.sock, out.pace.deadline() - time.monotonic())
        self._pump(out)

    def _settle(self) -> None:
        """The response is queued to its end: what waits is the connection's to send now (or,
        with no connection to take it, this thread's)."""
        out = self.out
        assert out is not None
        out.complete = True
        out.sent_direct = self._wire
        while self.sink is None and out.total:
            self._wait_and_pump(out)


def run_application(
    ctx: ServerContext,
    sock: socket.socket,
    peer: tuple[str, int],
    request: Request,
    body: InputStream,
    sink: OutputSink | None = None,
    body_length: int | None = None,
    pipelined: bool = False,
) -> bool:
    """Run the application for ``request`` and send its response.

    What the client has not taken when the application is done is left in ``sink.out``
    (complete) for the connection to send; without a sink, this thread sends it all.  With
    ``--request-timeout`` the request is in ``ctx.watch`` while it runs, so a stuck one can
    be reported; with metrics it is counted in flight.

    Args:
        body_length: the decoded length of a chunked body read in full, given to the
            application as ``CONTENT_LENGTH`` (the body it reads is no longer chunked).
        pipelined: the client already sent more: while stopping, the connection stays open
            for it (only the last response before the end says ``Connection: close``).

    Returns:
        True if the connection may carry another request (once the output is sent).
    """
    writer = ResponseWriter(ctx, sock, request, request.keep_alive, peer, sink)
    writer.body = body
    writer.pipelined = pipelined
    watch = ctx.watch
    ident = watch.begin(request, peer) if watch is not None else 0
    # One clock read for both the access line's duration and the metrics' histogram.
    started = time.monotonic() if ctx.access.enabled or ctx.metrics is not None else 0.0
    try:
        return _respond(ctx, writer, peer, request, body, body_length, started)
    finally:
        writer.ended = True
        # start_response's write() is writer.write: a reference cycle that would leave the
        # request's objects to the garbage collector (a collection every ~90 requests);
        # cut, they go as soon as the request is done.
        writer.start.write = _write_after_end
        if watch is not None:
            watch.end(ident)


_ENDED = "write() called after the response ended"


def _write_after_end(data: bytes) -> None:
    raise LocalProtocolError(_ENDED)


def _respond(
    ctx: ServerContext,
    writer: ResponseWriter,
    peer: tuple[str, int],
    request: Request,
    body: InputStream,
    body_length: int | None,
    started: float,
) -> bool:
    """run_application's work: the environ, the application, its response, the access line
    (``started``: when the request began, if the log or the metrics need it)."""
    access = ctx.access
    # Whether the logger's level lets the line through is asked once per batch of lines
    # (AccessLog.drain), not here: two Python calls a request fewer.
    logged = access.enabled
    try:
        environ = ctx.environ.build(request, body, peer)
    except RemoteProtocolError as exc:
        writer.send_error_page(exc.status_hint, str(exc), ctx.config.send_timeout)
        access.refused(peer[0], exc.status_hint, writer.sent_body_bytes, request_line(request))
        return False
    if body_length is not None:
        environ["CONTENT_LENGTH"] = str(body_length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    keep = answered = False
    try:
        result = ctx.app(environ, writer.start)
        try:
            writer.write_all(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None and not writer.close_deferred:
                close()
        keep = writer.keep_alive
        answered = True
    except ClientDisconnected as exc:
        error_logger.debug("client %s went away: %s", peer[0], exc)
    except RemoteProtocolError as exc:
        if exc is getattr(body, "error", None):  # the client broke the body's framing
            _body_refused(writer, peer, exc)
        else:
            _application_failed(ctx, writer, environ, exc, started)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt or GeneratorExit raised by an application is a
        # failed request like any other: only the signal handlers stop the server.
        _application_failed(ctx, writer, environ, exc, started)
    if not started:
        return keep
    seconds = time.monotonic() - started  # one clock read for the metrics and the log
    metrics = ctx.metrics
    if answered and metrics is not None:  # a failed one was counted by _application_failed
        metrics.response(request.method, writer.start.status_code, writer.sent_body_bytes, seconds)
    if logged:  # every response gets its line: a 500, one cut short, one refused mid-body
        out = writer.out
        if out is not None and out.total:
            # Part of it waits for the client: the line is written once it is sent, or the
            # client is dropped, with the body bytes that really went out.
            out.on_discard = functools.partial(_log_when_sent, ctx, environ, writer, started)
        else:
            _log_access(ctx, environ, writer, seconds)
    return keep


def _application_failed(
    ctx: ServerContext,
    writer: ResponseWriter,
    environ: dict[str, Any],
    exc: BaseException,
    started: float,
) -> None:
    """Log the failure, count it, and send a 500 page unless the head went out (``started``:
    when the request began, set whenever metrics are on)."""
    error_logger.error(
        "error in application for %s %s", environ["REQUEST_METHOD"], environ["RAW_URI"],
        exc_info=exc,
    )  # fmt: skip
    if ctx.metrics is not None:  # counted as a 500, or as the response that was cut short
        seconds = time.monotonic() - started
        request, start = writer.request, writer.start
        ctx.metrics.app_error(request.method, start.status_code, writer.head_sent, seconds)
    if writer.head_sent:
        return  # the caller closes: the client sees a truncated response, never a wrong one
    detail = ""
    if ctx.config.expose_tracebacks:
        detail = "".join(traceback.format_exception(exc))
    writer.send_error_page(500, detail, ctx.config.send_timeout)


def _body_refused(writer: ResponseWriter, peer: tuple[str, int], exc: RemoteProtocolError) -> None:
    """The application let a broken request body's error through: answer with its status."""
    error_logger.info("%d for %s: %s", exc.status_hint, peer[0] or "-", exc)
    if writer.ctx.metrics is not None:
        writer.ctx.metrics.refused(exc.status_hint)
    if writer.head_sent:
        return  # the caller closes: the response is cut short
    writer.send_error_page(exc.status_hint, str(exc), 1.0)


def _log_access(
    ctx: ServerContext,
    environ: dict[str, Any],
    writer: ResponseWriter,
    seconds: float,
    unsent: int = 0,
) -> None:
    """The access line of a response, ``seconds`` after its request began, with the status
    and body bytes that went out (``unsent``: bytes still queued when the client was dropped;
    head and chunk framing make that a bound within a few bytes per piece)."""
    ctx.access.response(
        environ,
        writer.logged_status(),
        max(0, writer.sent_body_bytes - unsent),
        seconds,
        writer.start.headers,
    )


def _log_when_sent(
    ctx: ServerContext,
    environ: dict[str, Any],
    writer: ResponseWriter,
    started: float,
    unsent: int,
) -> None:
    """The output buffer's on_discard: the line of a response that finished going out (or
    whose client was dropped) after the application returned."""
    _log_access(ctx, environ, writer, time.monotonic() - started, unsent)
