"""A Starlette application: a streamed upload, a disconnect seen by ``is_disconnected``, a
middleware.  ``/left`` says when the application saw its client leave (wall clock).

The middleware is a pure ASGI one, as Starlette's documentation advises: a
``BaseHTTPMiddleware`` runs the endpoint's ``receive`` through a task group, and the
disconnect message the server returns to a check ``is_disconnected`` has already cancelled
is dropped at the task group's exit (seen here: the server returned it once, the endpoint
never saw it; nothing in that path depends on the server).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LEFT: list[float] = []


async def upload(request: Request) -> JSONResponse:
    total = pieces = 0
    async for chunk in request.stream():
        total += len(chunk)
        pieces += 1
    return JSONResponse({"bytes": total, "pieces": pieces})


async def wait(request: Request) -> Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            LEFT.append(time.time())
            break
        await asyncio.sleep(0.05)
    return Response("never read")


async def left(request: Request) -> JSONResponse:
    return JSONResponse(LEFT)


class Stamp:
    """Adds ``x-middleware: seen`` to every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-middleware", b"seen")]
            await send(message)

        await self.app(scope, receive, stamped)


app = Starlette(
    routes=[
        Route("/upload", upload, methods=["POST"]),
        Route("/wait", wait),
        Route("/left", left),
    ],
    middleware=[Middleware(Stamp)],
)
