"""Shutdown that drains open WebSockets (docs/websocket.md, "Shutdown"): `kakehashi serve`
in a subprocess, SIGTERM with 100 WebSockets open."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
N = 100
GRACE = 3.0


async def _open_and_wait(where: str, proc: ServeProcess) -> tuple[list[Any], float, Any]:
    sockets = [await connect(f"ws://{where}/", open_timeout=10) for _ in range(N)]
    for ws in sockets:  # each one answered: the application runs for all of them
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "ping"
    started = time.monotonic()
    proc.signal(signal.SIGTERM)

    async def closed(ws: Any) -> Any:
        try:
            await asyncio.wait_for(ws.recv(), GRACE + 2)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None
        return "message"

    codes = await asyncio.gather(*(closed(ws) for ws in sockets))
    late: Any = None
    try:  # a new upgrade during the drain: refused (or the listener is already gone)
        await connect(f"ws://{where}/", open_timeout=2)
    except InvalidStatus as exc:
        late = exc.response.status_code
    except OSError as exc:
        late = exc
    return codes, started, late


def test_sigterm_with_100_websockets_closes_each_with_1001(serve_process: Spawn) -> None:
    proc = serve_process("tests.ws_apps:tells", "--port", "0", "--interface", "asgi",
                         "--graceful-timeout", str(GRACE), "--log-level", "info")  # fmt: skip
    where = proc.address()
    codes, started, late = asyncio.run(_open_and_wait(where, proc))
    assert codes == [1001] * N
    assert proc.wait(GRACE + 5) == 0
    took = time.monotonic() - started
    print(f"\n{N} WebSockets drained, exit {took:.2f} s after SIGTERM")
    assert took <= GRACE + 0.5, took
    assert proc.stderr.count("ws-disconnect 1001") == N, proc.stderr[-2000:]
    assert late == 503 or isinstance(late, OSError), late
