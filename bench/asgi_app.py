"""``bench.apps:app`` as an ASGI application, for the ``uvicorn`` peer: the same routes and
bodies (``/``, ``/big``, ``/upload``; anything else 404); a WebSocket on any path is an echo
(bench/ws_echo.py).

uvicorn with httptools and uvloop is the fast server with C parts that issue 12 measured
kakehashi against; run here, beside waitress, it tells how this machine's ratios compare with
the ones the issue's bars were set from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.apps import _BIG_BODY, HELLO_BODY

__all__ = ["app"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _body_length(receive: Receive) -> int:
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            return total


async def _echo(receive: Receive, send: Send) -> None:
    """Every message back as it came, text or bytes, until the peer closes."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch by path, as ``bench.apps.app`` does; a WebSocket is an echo."""
    if scope["type"] == "websocket":
        await _echo(receive, send)
        return
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    path = scope["path"]
    if path == "/":
        await _reply(send, 200, HELLO_BODY)
    elif path == "/big":
        await _reply(send, 200, _BIG_BODY)
    elif path == "/upload":
        await _reply(send, 200, str(await _body_length(receive)).encode("ascii"))
    else:
        await _reply(send, 404, b"Not Found")
