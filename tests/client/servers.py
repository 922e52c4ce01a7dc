"""Loopback servers for the client's real-socket tests: stdlib http.server and raw sockets."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LARGE = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB, every byte value


class Handler(BaseHTTPRequestHandler):
    """The routes the client tests use; HTTP/1.1 so that connections are kept alive."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, *fields: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in fields:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        route = self.path.split("?")[0]
        routes: dict[str, Callable[[], None]] = {
            "/": lambda: self._send(200, b"Hello, World", ("Content-Type", "text/plain")),
            "/port": lambda: self._send(200, str(self.client_address[1]).encode()),
            "/large": lambda: self._send(200, LARGE),
            "/chunked": self._chunked,
            "/close": self._close_delimited,
            "/204": lambda: self._no_body(204),
            "/304": lambda: self._no_body(304),
            "/truncated": self._truncated,
            "/stall": self._stall,
            "/redirect": lambda: self._send(302, b"", ("Location", "/")),
            "/headers": self._headers,
        }
        routes.get(route, lambda: self._send(404, b"Not Found"))()

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(200, body, ("X-Framing", self.headers.get("Transfer-Encoding", "length")))

    do_PUT = do_POST

    def _read_chunked(self) -> bytes:
        parts = []
        for _ in range(100_000):
            size = int(self.rfile.readline().split(b";")[0], 16)
            if not size:
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _headers(self) -> None:
        lines = [f"{k}: {v}" for k, v in self.headers.items()]
        self._send(200, "\n".join(lines).encode(), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))

    def _chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command != "HEAD":
            for piece in (b"Hello, ", b"chunked ", b"World"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    def _close_delimited(self) -> None:
        self.close_connection = True
        self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        self.wfile.write(b"until the server closes" * 1000)

    def _no_body(self, status: int) -> None:
        self.send_response(status)
        self.end_headers()

    def _truncated(self) -> None:
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")

    def _stall(self) -> None:
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        self.wfile.flush()
        time.sleep(1.5)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away is part of the tests


@contextlib.contextmanager
def http_server(context: ssl.SSLContext | None = None) -> Iterator[str]:
    """A ThreadingHTTPServer on 127.0.0.1 in a thread; yields its base URL."""
    server = QuietServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def raw_server(
    respond: Callable[[socket.socket], None], connections: int = 1
) -> Iterator[tuple[str, int]]:
    """A one-thread socket server on 127.0.0.1 that runs ``respond`` on each connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        served = 0
        for _ in range(2000):  # bounded: at most 100 s of polling
            if stop.is_set() or served == connections:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                respond(conn)
            served += 1

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield "127.0.0.1", listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def silent(conn: socket.socket) -> None:
    """Accept, read what comes, never answer; return when the client gives up (or after 5 s)."""
    conn.settimeout(5)
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway key and certificate for 127.0.0.1 and localhost (``openssl``)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    key, crt = directory / "key.pem", directory / "cert.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(crt), "-addext", san],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, crt


def server_context(key: Path, crt: Path) -> ssl.SSLContext:
    """A TLS server context with this key and certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    return context
