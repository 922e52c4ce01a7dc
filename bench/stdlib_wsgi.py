"""A minimal WSGI adapter on the standard library's ``ThreadingHTTPServer``.

A benchmark peer only -- "what you get from the stdlib in a few lines": HTTP/1.1
keep-alive, one thread per connection, TCP_NODELAY on every accepted socket, no access log.
It does not implement chunked request bodies (answers 501) and closes the connection
when the app gives no Content-Length. Not for production use.
"""

from __future__ import annotations

import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

__all__ = ["BodyReader", "WSGIRequestHandler", "make_server"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SPECIAL_HEADERS = {"CONTENT_TYPE", "CONTENT_LENGTH"}
_DRAIN_CHUNK = 64 * 1024


class BodyReader:
    """``wsgi.input``: a reader that stops after Content-Length bytes."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.readline(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self.read(_DRAIN_CHUNK):
            pass


class WSGIRequestHandler(BaseHTTPRequestHandler):
    """Runs ``self.server.app`` for every request on a keep-alive connection."""

    protocol_version = "HTTP/1.1"
    server_version = "bench-stdlib"
    wbufsize = 64 * 1024  # headers and a small body leave in one send()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log (fairness with the other peers)."""

    def _environ(self, body: BodyReader) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in _SPECIAL_HEADERS:
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _send_head(self, status: str, headers: list[tuple[str, str]]) -> None:
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        has_length = False
        for name, value in headers:
            has_length = has_length or name.lower() == "content-length"
            self.send_header(name, value)
        if self.close_connection or not has_length:
            self.send_header("Connection", "close")  # also sets self.close_connection
        self.end_headers()

    def _run_app(self) -> None:
        if "Transfer-Encoding" in self.headers:
            self.send_error(501, "chunked request bodies are not supported")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        body = BodyReader(self.rfile, length)
        pending: list[Any] = []  # [status, headers] once start_response is called
        sent = False

        def write(data: bytes) -> None:
            nonlocal sent
            if not sent:
                self._send_head(*pending)
                sent = True
            self.wfile.write(data)

        def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            if exc_info is not None and sent:
                raise exc_info[1].with_traceback(exc_info[2])
            pending[:] = [status, headers]
            return write

        result = self.server.app(self._environ(body), start_response)  # type: ignore[attr-defined]
        try:
            for chunk in result:
                if chunk:
                    write(chunk)
            if not sent:
                write(b"")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body.drain()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _run_app


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def make_server(host: str, port: int, app: WSGIApp) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer on (host, port) serving ``app``."""
    server = _Server((host, port), WSGIRequestHandler)
    server.app = app  # type: ignore[attr-defined]
    return server
