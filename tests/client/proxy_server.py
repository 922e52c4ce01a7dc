"""A small forward proxy on loopback for the client's proxy tests.

It serves absolute-form requests (``GET http://host:port/path HTTP/1.1``) by forwarding them
in origin-form with ``Connection: close``, and ``CONNECT host:port`` by opening a tunnel and
relaying bytes both ways.  It records every request line it saw, and with ``credentials``
answers 407 to requests without that ``Proxy-Authorization``.
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class ProxyLog:
    lines: list[str] = field(default_factory=list)
    credentials: str | None = None  # "user:password" required, or None


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes (bounded: 30 s of silence)."""
    for _ in range(100_000):
        ready, _, _ = select.select([a, b], [], [], 30)
        if not ready:
            return
        for src in ready:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)


class _Handler(socketserver.StreamRequestHandler):
    server: _ProxyServer
    rbufsize = 0  # unbuffered: whatever follows the head stays in the socket for _relay

    def handle(self) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n") and len(head) < 65536:
            line = self.rfile.readline()
            if not line:
                return
            head += line
        request_line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        self.server.log.lines.append(request_line)
        method, target, _ = request_line.split(" ")
        if not self._authorized(fields):
            self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
            self.wfile.write(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as up:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _relay(self.connection, up)
            return
        url = urllib.parse.urlsplit(target)
        kept = [f for f in fields if not f.lower().startswith(("proxy-", "connection:"))]
        forwarded = f"{method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1"
        out = "\r\n".join([forwarded, *kept, "Connection: close", "", ""]).encode("latin-1")
        with socket.create_connection((url.hostname, url.port or 80), timeout=10) as up:
            up.sendall(out)
            _relay(self.connection, up)

    def _authorized(self, fields: list[str]) -> bool:
        wanted = self.server.log.credentials
        if wanted is None:
            return True
        token = base64.b64encode(wanted.encode()).decode()
        return f"proxy-authorization: basic {token}".lower() in [f.lower() for f in fields]


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, log: ProxyLog) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.log = log

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away is part of the tests


@contextlib.contextmanager
def proxy_server(credentials: str | None = None) -> Iterator[tuple[str, ProxyLog]]:
    """A running proxy; yields ``("127.0.0.1:PORT", log)``."""
    log = ProxyLog(credentials=credentials)
    server = _ProxyServer(log)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
