"""Real WebSocket peers on 127.0.0.1 for the client's tests: the ``websockets`` library's sync
server in a thread, and a raw socket server that does the handshake by hand and then
misbehaves on purpose."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.client.servers import raw_server

Handler = Callable[[ServerConnection], None]
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def echo(conn: ServerConnection) -> None:
    """Send every message back, as it came (text or binary)."""
    for message in conn:
        conn.send(message)


def drain(conn: ServerConnection) -> None:
    """Read until the connection closes, however it closes."""
    with contextlib.suppress(ConnectionClosed):
        for _ in conn:
            pass


@contextlib.contextmanager
def ws_server(
    handler: Handler = echo, *, ssl_context: ssl.SSLContext | None = None, **options: Any
) -> Iterator[str]:
    """A ``websockets`` server running ``handler`` in a thread; yields its base URL.

    ``options`` go to ``websockets.sync.server.serve`` (``compression=None``,
    ``subprotocols=[...]``, ``max_size=...``, ``process_request=...``).
    """
    options.setdefault("max_size", None)
    server = serve(handler, "127.0.0.1", 0, ssl=ssl_context, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "wss" if ssl_context is not None else "ws"
    try:
        yield f"{scheme}://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()
        thread.join(10)


def read_head(conn: socket.socket) -> bytes:
    """Read a request head (bounded: 64 KiB, 5 s)."""
    conn.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = conn.recv(65536)
        if not data:
            break
        head += data
    return head


def accept_by_hand(conn: socket.socket) -> None:
    """Answer a WebSocket handshake with a bare 101 (no extension, no subprotocol)."""
    head = read_head(conn)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@contextlib.contextmanager
def raw_ws_server(after_handshake: Callable[[socket.socket], None]) -> Iterator[str]:
    """A one-connection server that accepts the handshake, then runs ``after_handshake``."""

    def respond(conn: socket.socket) -> None:
        accept_by_hand(conn)
        after_handshake(conn)

    with raw_server(respond) as (host, port):
        yield f"ws://{host}:{port}"
