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
from kakehashi.server.accesslog import body_length, request_line
from kakehashi.server.context import ServerContext, error_logger
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
        "error_status",
        "head_sent",
        "keep_alive",
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
        self.sent_body_bytes = 0  # body bytes the kernel took (not framing, not the head)
        self.error_status = 0  # the status of an error page sent instead of the app's response
        self._framing = Framing.NONE
        self._remaining = 0
        self.body: object = None

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
            self.keep_alive and not self.ctx.stopping and not _awaits_continue(self.body),
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
        if self.head_sent:
            framed = self._frame(data)
            send_all(self.sock, framed, self.ctx.config.send_timeout)
        else:
            head = self._head(None)
            framed = self._frame(data)
            send_all(self.sock, head + framed, self.ctx.config.send_timeout)
        self.sent_body_bytes += len(data) if self._framing is Framing.CHUNKED else len(framed)

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
            parts = [self._head(len(body)) if not self.head_sent else b"", self._frame(body)]
            sent = len(body) if self._framing is Framing.CHUNKED else len(parts[1])
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
            self.sent_body_bytes += sent
            return
        if type(result) is FileWrapper and self._try_sendfile(result):
            return
        for chunk in result:
            self.write(chunk)
        self.finish()

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
        send_all(self.sock, self._head(size), self.ctx.config.send_timeout)
        if self._framing is not Framing.LENGTH:
            if self._framing is Framing.CHUNKED:  # the app gave another length: iterate
                for chunk in wrapper:
                    self.write(chunk)
                self.finish()
            return True
        count = min(size, self._remaining)
        sent = sendfile_all(self.sock, fd, offset, count, self.ctx.config.send_timeout)
        self.sent_body_bytes += sent
        self._remaining -= sent
        self.finish()
        return True


def run_application(
    ctx: ServerContext,
    sock: socket.socket,
    peer: tuple[str, int],
    request: Request,
    body: InputStream,
) -> bool:
    """Run the application for ``request`` and send its response.

    Returns:
        True if the connection may carry another request.
    """
    started = time.monotonic() if ctx.log_access else 0.0
    writer = ResponseWriter(ctx, sock, request, request.keep_alive)
    writer.body = body
    try:
        environ = ctx.environ.build(request, body, peer)
    except RemoteProtocolError as exc:
        writer.send_error_page(exc.status_hint, str(exc), ctx.config.send_timeout)
        if started:
            ctx.access.refused(
                peer[0], exc.status_hint, writer.sent_body_bytes, request_line(request)
            )
        return False
    keep = False
    try:
        result = ctx.app(environ, writer.start)
        try:
            writer.write_all(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        keep = writer.keep_alive
    except ClientDisconnected as exc:
        error_logger.debug("client %s went away: %s", peer[0], exc)
    except RemoteProtocolError as exc:
        if exc is getattr(body, "error", None):  # the client broke the body's framing
            _body_refused(writer, peer, exc)
        else:
            _application_failed(ctx, writer, environ, exc)
    except Exception as exc:
        _application_failed(ctx, writer, environ, exc)
    if started:  # every response gets its line: a 500, one cut short, one refused mid-body
        _log_access(ctx, environ, writer, started)
    return keep


def _application_failed(
    ctx: ServerContext, writer: ResponseWriter, environ: dict[str, Any], exc: Exception
) -> None:
    error_logger.error(
        "error in application for %s %s", environ["REQUEST_METHOD"], environ["RAW_URI"],
        exc_info=exc,
    )  # fmt: skip
    if writer.head_sent:
        return  # the caller closes: the client sees a truncated response, never a wrong one
    detail = ""
    if ctx.config.expose_tracebacks:
        detail = "".join(traceback.format_exception(exc))
    writer.send_error_page(500, detail, ctx.config.send_timeout)


def _body_refused(writer: ResponseWriter, peer: tuple[str, int], exc: RemoteProtocolError) -> None:
    """The application let a broken request body's error through: answer with its status."""
    error_logger.info("%d for %s: %s", exc.status_hint, peer[0] or "-", exc)
    if writer.head_sent:
        return  # the caller closes: the response is cut short
    writer.send_error_page(exc.status_hint, str(exc), 1.0)


def _log_access(
    ctx: ServerContext, environ: dict[str, Any], writer: ResponseWriter, started: float
) -> None:
    """The access line of a response, with the status and body bytes that went out."""
    ctx.access.response(
        environ,
        writer.logged_status(),
        writer.sent_body_bytes,
        time.monotonic() - started,
        writer.start.headers,
    )
