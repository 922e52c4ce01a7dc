"""Running the application for one request and sending its response (PEP 3333).

No parsing and no polling here: the channel hands over a parsed request, its body stream and
the socket it owns; this module calls the application, frames what it returns with
kakehashi.http1's rules (``outgoing_response_framing``) and writes it straight to the socket
from the worker thread that owns the connection (see channel.py for why that is safe).

Error rules: an application error before the head is sent becomes a 500 (with the traceback
only when ``expose_tracebacks`` is set) and the connection closes; after the head is sent,
the connection is aborted, so the client sees a truncated response and never a wrong one.
A client that goes away is not an error: the response is dropped quietly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections.abc import Iterable
from typing import Any

from kakehashi.errors import ClientDisconnected, LocalProtocolError, RemoteProtocolError
from kakehashi.http1 import Framing, Request, outgoing_response_framing, reason_phrase
from kakehashi.server.context import ServerContext, access_logger, error_logger
from kakehashi.server.input import StreamingInput
from kakehashi.server.sockio import send_all, send_parts, sendfile_all
from kakehashi.wsgi import FileWrapper, InputStream, StartResponse

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


def _awaits_continue(body: object) -> bool:
    """True while a 100-continue client still waits to send a body the app never asked for:
    the connection cannot be reused (input.py closes rather than ask for it)."""
    return type(body) is StreamingInput and body.awaiting_continue


class ResponseWriter:
    """Frames and sends one response; owned by the worker thread running the request."""

    __slots__ = (
        "_framing",
        "_remaining",
        "body",
        "ctx",
        "head_sent",
        "keep_alive",
        "pipelined",
        "request",
        "sent_body_bytes",
        "sock",
        "start",
    )

    def __init__(
        self, ctx: ServerContext, sock: socket.socket, request: Request, keep_alive: bool
    ) -> None:
        self.ctx = ctx
        self.sock = sock
        self.request = request
        self.keep_alive = keep_alive
        self.start = StartResponse(self.write, ctx.head_cache)
        self.head_sent = False
        self.sent_body_bytes = 0
        self._framing = Framing.NONE
        self._remaining = 0
        self.body: object = None
        self.pipelined = False

    def _head(self, length: int | None) -> bytes:
        start = self.start
        if not start.status_code:
            raise LocalProtocolError("the application sent a body before start_response")
        headers, names = start.headers, start.names
        if length is not None and "content-length" not in names:
            headers = [*headers, (b"Content-Length", b"%d" % length)]
        out = outgoing_response_framing(
            self.request.method,
            self.request.http_version,
            self.keep_alive
            and not (self.ctx.stopping and not self.pipelined)
            and not _awaits_continue(self.body),
            start.status_code,
            headers,
        )
        self.keep_alive = out.keep_alive
        self._framing = out.framing
        self._remaining = out.content_length or 0
        extra = b""
        if "date" not in names:
            extra += b"Date: " + self.ctx.date_header() + b"\r\n"
        if "server" not in names:
            extra += b"Server: kakehashi\r\n"
        # Fields were validated by StartResponse (wsgi.py) with the same rules as
        # http1.validate_fields, so they are joined here without a second pass.
        lines = b"".join([b"%s: %s\r\n" % field for field in out.headers])
        start.headers_sent = self.head_sent = True
        return b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (start.status_code, start.reason, lines, extra)

    def _frame(self, data: bytes) -> bytes:
        framing = self._framing
        if framing is Framing.CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing is Framing.LENGTH:
            if len(data) > self._remaining:
                self.keep_alive = False
                error_logger.error(
                    "application sent more than its Content-Length; response truncated"
                )
                data = data[: self._remaining]
            self._remaining -= len(data)
            return data
        if framing is Framing.NONE:
            return b""
        return data

    def write(self, data: bytes) -> None:
        """Send a piece of body (also the ``write()`` callable of start_response)."""
        if type(data) is not bytes:
            raise LocalProtocolError(f"the application must yield bytes, not {type(data).__name__}")
        if not data:
            return
        self.sent_body_bytes += len(data)
        if self.head_sent:
            send_all(self.sock, self._frame(data), self.ctx.config.send_timeout)
        else:
            head = self._head(None)
            send_all(self.sock, head + self._frame(data), self.ctx.config.send_timeout)

    def finish(self) -> None:
        """End the body; the connection is not reusable if the body fell short."""
        tail = b""
        if not self.head_sent:
            tail = self._head(0)
        if self._framing is Framing.CHUNKED:
            tail += b"0\r\n\r\n"
        elif self._framing is Framing.LENGTH and self._remaining:
            error_logger.error("application sent less than its Content-Length; closing")
            self.keep_alive = False
        elif self._framing is Framing.CLOSE:
            self.keep_alive = False
        if tail:
            send_all(self.sock, tail, self.ctx.config.send_timeout)

    def write_all(self, result: Iterable[bytes]) -> None:
        """Send everything the application returned."""
        if type(result) is list or type(result) is tuple:
            # A known body: one write with its length, no chunked coding.
            body = b"".join(result) if len(result) != 1 else result[0]
            if type(body) is not bytes:
                raise LocalProtocolError("the application must return bytes")
            self.sent_body_bytes = len(body)
            parts = [self._head(len(body)) if not self.head_sent else b"", self._frame(body)]
            if self._framing is Framing.CHUNKED:
                parts.append(b"0\r\n\r\n")
            elif self._framing is Framing.CLOSE:
                self.keep_alive = False
            elif self._framing is Framing.LENGTH and self._remaining:
                error_logger.error("application sent less than its Content-Length; closing")
                self.keep_alive = False
            if len(body) >= _GATHER_BYTES:
                send_parts(self.sock, parts, self.ctx.config.send_timeout)
            elif data := b"".join(parts):
                send_all(self.sock, data, self.ctx.config.send_timeout)
            return
        if type(result) is FileWrapper and self._try_sendfile(result):
            return
        for chunk in result:
            self.write(chunk)
        self.finish()

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
        send_all(self.sock, self._head(size), self.ctx.config.send_timeout)
        if self._framing is not Framing.LENGTH:
            if self._framing is Framing.CHUNKED:  # the app gave another length: iterate
                for chunk in wrapper:
                    self.write(chunk)
                self.finish()
            return True
        count = min(size, self._remaining)
        sent = sendfile_all(self.sock, fd, offset, count, self.ctx.config.send_timeout)
        self.sent_body_bytes = sent
        self._remaining -= sent
        self.finish()
        return True


def run_application(
    ctx: ServerContext,
    sock: socket.socket,
    peer: tuple[str, int],
    request: Request,
    body: InputStream,
    body_length: int | None = None,
    pipelined: bool = False,
) -> bool:
    """Run the application for ``request`` and send its response (see _run_application);
    the request is in ``ctx.watch`` while it runs, so a stuck one can be reported."""
    ident = ctx.watch.begin(request, peer)
    if ctx.metrics is not None:
        ctx.metrics.begin()
    try:
        return _run_application(ctx, sock, peer, request, body, body_length, pipelined)
    finally:
        ctx.watch.end(ident)
        if ctx.metrics is not None:
            ctx.metrics.end()


def _run_application(
    ctx: ServerContext,
    sock: socket.socket,
    peer: tuple[str, int],
    request: Request,
    body: InputStream,
    body_length: int | None,
    pipelined: bool,
) -> bool:
    """Run the application for ``request`` and send its response.

    Args:
        body_length: the decoded length of a chunked body read in full, given to the
            application as ``CONTENT_LENGTH`` (the body it reads is no longer chunked).
        pipelined: the client already sent more: while stopping, the connection stays open
            for it (only the last response before the end says ``Connection: close``).

    Returns:
        True if the connection may carry another request.
    """
    started = time.monotonic() if ctx.log_access else 0.0
    writer = ResponseWriter(ctx, sock, request, request.keep_alive)
    writer.body = body
    writer.pipelined = pipelined
    try:
        environ = ctx.environ.build(request, body, peer)
    except RemoteProtocolError as exc:
        send_all(sock, error_response(ctx, exc.status_hint, str(exc)), ctx.config.send_timeout)
        return False
    if body_length is not None:
        environ["CONTENT_LENGTH"] = str(body_length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    try:
        result = ctx.app(environ, writer.start)
        try:
            writer.write_all(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except ClientDisconnected as exc:
        error_logger.debug("client %s went away: %s", peer[0], exc)
        return False
    except RemoteProtocolError as exc:
        if exc is getattr(body, "error", None):  # the client broke the body's framing
            _body_refused(ctx, writer, peer, exc)
        else:
            _application_failed(ctx, writer, environ, exc)
        return False
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt or GeneratorExit raised by an application is a
        # failed request like any other: only the signal handlers stop the server.
        _application_failed(ctx, writer, environ, exc)
        if started:  # the 500 (or the aborted response) gets its access line too
            _log_access(environ, writer, time.monotonic() - started, failed=True)
        return False
    if ctx.metrics is not None:
        ctx.metrics.response(request.method, writer.start.status_code, writer.sent_body_bytes)
    if started:
        _log_access(environ, writer, time.monotonic() - started)
    return writer.keep_alive


def _application_failed(
    ctx: ServerContext, writer: ResponseWriter, environ: dict[str, Any], exc: BaseException
) -> None:
    error_logger.error(
        "error in application for %s %s", environ["REQUEST_METHOD"], environ["RAW_URI"],
        exc_info=exc,
    )  # fmt: skip
    if ctx.metrics is not None:  # counted as a 500, or as the response that was cut short
        ctx.metrics.app_error(writer.request.method, writer.start.status_code, writer.head_sent)
    if writer.head_sent:
        return  # the caller closes: the client sees a truncated response, never a wrong one
    detail = ""
    if ctx.config.expose_tracebacks:
        detail = "".join(traceback.format_exception(exc))
    with contextlib.suppress(ClientDisconnected):
        send_all(writer.sock, error_response(ctx, 500, detail), ctx.config.send_timeout)


def _body_refused(
    ctx: ServerContext, writer: ResponseWriter, peer: tuple[str, int], exc: RemoteProtocolError
) -> None:
    """The application let a broken request body's error through: answer with its status."""
    error_logger.info("%d for %s: %s", exc.status_hint, peer[0] or "-", exc)
    if ctx.metrics is not None:
        ctx.metrics.refused(exc.status_hint)
    if writer.head_sent:
        return  # the caller closes: the response is cut short
    with contextlib.suppress(ClientDisconnected):
        send_all(writer.sock, error_response(ctx, exc.status_hint, str(exc)), 1.0)


def _log_access(
    environ: dict[str, Any], writer: ResponseWriter, seconds: float, failed: bool = False
) -> None:
    # Combined Log Format, then the duration in microseconds (Apache's %D).
    access_logger.info(
        '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %d',
        environ["REMOTE_ADDR"],
        time.strftime("%d/%b/%Y:%H:%M:%S %z"),
        environ["REQUEST_METHOD"],
        environ["RAW_URI"],
        environ["SERVER_PROTOCOL"],
        500 if failed and not writer.head_sent else writer.start.status_code,
        writer.sent_body_bytes,
        environ.get("HTTP_REFERER", "-"),
        environ.get("HTTP_USER_AGENT", "-"),
        int(seconds * 1e6),
    )
