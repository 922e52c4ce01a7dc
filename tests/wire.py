"""A tiny raw-socket HTTP/1.1 client for the server tests: exact bytes out, parsed responses in.

No kakehashi code here, so a bug in kakehashi.http1 cannot hide a bug in the server.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    """A connected socket to ``HOST:PORT``, ``[::1]:PORT`` or ``unix:/path``."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address[5:]
    elif address.startswith("["):
        host, _, port = address[1:].partition("]:")
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        target = (host, int(port))
    else:
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


class Reader:
    """Reads responses, one after another, from one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError("connection closed")
        self.buf += data

    def _take_until(self, marker: bytes) -> bytes:
        while (end := self.buf.find(marker)) < 0:
            self._fill()
        out, self.buf = self.buf[:end], self.buf[end + len(marker) :]
        return out

    def _take(self, count: int) -> bytes:
        while len(self.buf) < count:
            self._fill()
        out, self.buf = self.buf[:count], self.buf[count:]
        return out

    def read_response(self, head_request: bool = False) -> Response:
        head = self._take_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = ([*lines[0].split(" ", 2), ""])[:3]
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        resp = Response(int(status), reason, version, headers, b"", head)  # type: ignore[arg-type]
        code = resp.status
        if head_request or code < 200 or code in (204, 304):
            return resp
        if (resp.header("transfer-encoding") or "").lower() == "chunked":
            parts = []
            while size := int(self._take_until(b"\r\n").split(b";")[0], 16):
                parts.append(self._take(size))
                self._take(2)
            while self._take_until(b"\r\n"):  # trailers
                pass
            resp.body = b"".join(parts)
        elif (length := resp.header("content-length")) is not None:
            resp.body = self._take(int(length))
        else:
            resp.body = self.read_to_eof()
        return resp

    def read_to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def closed(self, timeout: float = 3.0) -> bool:
        """True if the peer closes (EOF or reset) with nothing more sent within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        self.buf += data
        return not data


def exchange(
    address: str, data: bytes, *, count: int = 1, head_request: bool = False, timeout: float = 5.0
) -> list[Response]:
    """Send ``data`` on a new connection and read ``count`` responses."""
    with connect(address, timeout) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        return [reader.read_response(head_request) for _ in range(count)]


def get(address: str, path: str = "/", extra: str = "", timeout: float = 5.0) -> Response:
    request = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n"
    return exchange(address, request.encode("latin-1"), timeout=timeout)[0]


def wait_until(predicate: object, timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


class _Replay:
    """A socket stand-in that returns recorded bytes, for :func:`parse_response`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def recv(self, size: int) -> bytes:
        out, self.data = self.data[:size], self.data[size:]
        return out


def parse_response(raw: bytes) -> Response:
    """The first response in bytes already received (a slow reader's, read by hand)."""
    return Reader(_Replay(raw)).read_response()  # type: ignore[arg-type]
