"""A raw WebSocket client for tests that must misbehave: a plain socket, the handshake by
hand, frames made and read with kakehashi's sans-I/O core (or written byte by byte)."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.errors import RemoteWebSocketError
from kakehashi.http1 import Role
from kakehashi.websocket import Connection, Event

_OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def close_raw_sockets() -> Iterator[None]:
    """Every RawWebSocket a test opened is closed after it (import this fixture)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


class RawWebSocket:
    """``RawWebSocket(address, path)``: connected and upgraded on return (a 101 or an
    AssertionError with the answer)."""

    def __init__(self, address: str, path: str = "/", extra: bytes = b"", timeout: float = 5):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        _OPEN.append(self.sock)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            piece = self.sock.recv(65536)
            assert piece, data
            data += piece
        self.head, _, rest = data.partition(b"\r\n\r\n")
        assert self.head.startswith(b"HTTP/1.1 101 "), self.head
        self.ws = Connection(Role.CLIENT)
        if rest:
            self.ws.receive_data(rest)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def events(self, timeout: float = 5.0, until: Any = None) -> list[Event]:
        """Events until the stream ends, ``until(event)`` is true, or ``timeout``."""
        out: list[Event] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                while (event := self.ws.next_event()) is not None:
                    out.append(event)
                    if until is not None and until(event):
                        return out
            except RemoteWebSocketError:
                return out
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                piece = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                piece = b""
            self.ws.receive_data(piece)
            if not piece:
                out.extend(self.ws.events())
                return out
        return out

    def closed_within(self, timeout: float) -> bool:
        """The server closed the TCP connection within ``timeout`` (what it sent is read
        and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()
