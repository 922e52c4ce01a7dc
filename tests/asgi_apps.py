"""ASGI applications the server tests serve, in-process or by ``kakehashi serve
tests.asgi_apps:NAME`` in a subprocess: twins of tests/server_apps.py, and applications that
break the ASGI rules on purpose."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client left")
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def text(send: Send, body: bytes, status: int = 200, **extra: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers, **extra})
    await send({"type": "http.response.body", "body": body})


async def _slow(scope: Scope, receive: Receive, send: Send) -> None:
    seconds = float(scope["query_string"] or b"1")
    await asyncio.sleep(seconds)
    await text(send, b"slept %g" % seconds)


async def _forever(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})


async def _big(scope: Scope, receive: Receive, send: Send) -> None:
    """64 MiB in 64 KiB pieces, for slow-reader tests."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    block = b"x" * 65536
    for _ in range(1024):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body"})


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    await text(send, await read_body(receive))


async def _pid(scope: Scope, receive: Receive, send: Send) -> None:
    await text(send, b"%d" % os.getpid())


IMPORTED_BY = os.getpid()  # which process imported this module (the parent with --preload)


async def _imported(scope: Scope, receive: Receive, send: Send) -> None:
    await text(send, b"%d %d" % (IMPORTED_BY, os.getpid()))


async def _block(scope: Scope, receive: Receive, send: Send) -> None:
    """A blocking call inside async code: stalls the loop (the watchdog's case)."""
    time.sleep(float(scope["query_string"] or b"1"))
    await text(send, b"blocked")


async def _frozen(scope: Scope, receive: Receive, send: Send) -> None:
    """How many objects the process froze out of the garbage collector's sight (--gc-freeze)."""
    await text(send, b"%d" % gc.get_freeze_count())


ROUTES = {"/pid": _pid, "/slow": _slow, "/forever": _forever, "/big": _big, "/echo": _echo,
          "/block": _block, "/imported": _imported, "/frozen": _frozen}  # fmt: skip


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch on the path; anything else is a hello.  No lifespan support."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope {scope['type']}")
    handler = ROUTES.get(scope["path"])
    if handler is None:
        await text(send, b"Hello, World")
        return
    await handler(scope, receive, send)


async def with_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """Lifespan with state: ``/state`` answers what the request's scope state holds."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            else:
                print("lifespan shutdown", flush=True)  # stdout: the test reads it
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/state":
        seen = repr(sorted(scope["state"].items())).encode()
        scope["state"]["mutated"] = True  # a copy: the next request does not see it
        await text(send, seen)
        return
    await app(scope, receive, send)


async def slow_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """A startup that takes 2 s (a database to reach), then the hello app."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(2)
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await app(scope, receive, send)


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database at db:5432"})
        return
    await text(send, b"never served")


class ASGI2App:
    """An ASGI 2 application: instantiated with the scope, awaited with receive and send."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] == "http":
            await text(send, b"asgi2 " + self.scope["path"].encode())


def wrapped(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
    """An ASGI 3 application behind a plain function: only --interface asgi tells."""
    return app(scope, receive, send)


def neither(only_one_argument: object) -> None:
    """Callable, but neither WSGI nor ASGI."""
