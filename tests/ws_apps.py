"""ASGI WebSocket applications the server tests serve, in-process or by ``kakehashi serve
tests.ws_apps:NAME`` in a subprocess (Autobahn's echo server, the drain test, refusals
for ``kakehashi ws -v``)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Every message back as it came; plain HTTP gets a short text."""
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"a WebSocket echo server\n"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"),
                    "text": message.get("text")})  # fmt: skip


async def tells(scope: Scope, receive: Receive, send: Send) -> None:
    """The echo, and one stderr line when the disconnect comes: ``ws-disconnect CODE``."""
    if scope["type"] != "websocket":
        await echo(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"ws-disconnect {message['code']}", file=sys.stderr, flush=True)
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})  # fmt: skip


async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
    """The echo, but a WebSocket to ``/closed`` is closed before its accept (a 403) and one
    to ``/login`` is denied with a 401, a header and a body (``websocket.http.response``)."""
    if scope["type"] != "websocket" or scope["path"] not in ("/closed", "/login"):
        await echo(scope, receive, send)
        return
    await receive()  # websocket.connect
    if scope["path"] == "/closed":
        await send({"type": "websocket.close"})
        return
    headers = [(b"content-type", b"text/plain"), (b"x-why", b"no token")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"log in first\n"})
