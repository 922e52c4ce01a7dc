"""A Quart application: JSON in and out, and a streamed response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from quart import Quart, request

app = Quart(__name__)


@app.post("/json")
async def echo_json() -> dict[str, object]:
    data = await request.get_json()
    return {"got": data, "framework": "quart"}


@app.get("/stream")
async def stream() -> tuple[AsyncIterator[bytes], int, dict[str, str]]:
    async def pieces() -> AsyncIterator[bytes]:
        for n in range(3):
            yield b"quart %d\n" % n
            await asyncio.sleep(0.2)

    return pieces(), 200, {"content-type": "text/plain"}
