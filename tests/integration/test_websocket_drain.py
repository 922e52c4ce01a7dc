"""Shutdown that drains open WebSockets (docs/websocket.md, "Shutdown"): `kakehashi serve`
in a subprocess, SIGTERM with 100 WebSockets open; and with worker processes, the close
code tells why: 1001 when the service stops, 1012 when a replacement takes over (SIGHUP's
rolling reload, ``--max-requests``)."""

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
from tests.integration.processes import alive, ready_workers
from tests.wire import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
N = 100
GRACE = 3.0
APP = "tests.ws_apps:tells"  # prints "ws-disconnect CODE" when its disconnect comes


async def _open(where: str, count: int) -> list[Any]:
    sockets = [await connect(f"ws://{where}/", open_timeout=10) for _ in range(count)]
    for ws in sockets:  # each one answered: the application runs for all of them
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "ping"
    return sockets


async def _close_codes(sockets: list[Any], within: float) -> list[Any]:
    """The close code each socket got from the server ("message" if data came instead)."""

    async def closed(ws: Any) -> Any:
        try:
            await asyncio.wait_for(ws.recv(), within)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None
        return "message"

    return list(await asyncio.gather(*(closed(ws) for ws in sockets)))


async def _open_and_wait(where: str, proc: ServeProcess) -> tuple[list[Any], float, Any]:
    sockets = await _open(where, N)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    codes = await _close_codes(sockets, GRACE + 2)
    late: Any = None
    try:  # a new upgrade during the drain: refused (or the listener is already gone)
        await connect(f"ws://{where}/", open_timeout=2)
    except InvalidStatus as exc:
        late = exc.response.status_code
    except OSError as exc:
        late = exc
    return codes, started, late


def test_sigterm_with_100_websockets_closes_each_with_1001(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--interface", "asgi",
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


# -- worker processes: the arbiter says whether the service stops or a worker is replaced ------


async def _signal_and_wait(where: str, proc: ServeProcess, signum: int, count: int) -> list[Any]:
    sockets = await _open(where, count)
    proc.signal(signum)
    return await _close_codes(sockets, 15)


def _told(proc: ServeProcess, code: int, count: int) -> bool:
    """Whether ``count`` applications printed their disconnect with ``code`` (waiting for it:
    the close frame can reach the client before the application's line reaches the test)."""
    return wait_until(lambda: proc.stderr.count(f"ws-disconnect {code}") >= count, 5)


async def _echoes(where: str) -> bool:
    async with connect(f"ws://{where}/", open_timeout=5) as ws:
        await ws.send("after")
        return bool(await asyncio.wait_for(ws.recv(), 5) == "after")


def test_sighup_rolling_reload_closes_websockets_with_1012(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--interface", "asgi", "--workers", "2",
                         "--graceful-timeout", str(GRACE))  # fmt: skip
    where = proc.address()
    first = ready_workers(proc, 2)
    codes = asyncio.run(_signal_and_wait(where, proc, signal.SIGHUP, 10))
    assert codes == [1012] * 10, codes
    assert proc.wait_for("reload done", 10), proc.stderr
    assert _told(proc, 1012, 10), proc.stderr[-2000:]
    assert proc.stderr.count("ws-disconnect 1012") == 10, proc.stderr[-2000:]
    assert "ws-disconnect 1001" not in proc.stderr
    assert wait_until(lambda: not any(alive(pid) for pid in first), GRACE + 2)
    assert asyncio.run(_echoes(where))  # the new workers serve WebSockets
    proc.signal(signal.SIGTERM)
    assert proc.wait(GRACE + 5) == 0


def test_max_requests_recycling_closes_websockets_with_1012(serve_process: Spawn) -> None:
    # Each upgrade counts as a request: the fourth WebSocket makes the only worker due.
    proc = serve_process(APP, "--port", "0", "--interface", "asgi", "--workers", "1",
                         "--max-requests", "4", "--graceful-timeout", str(GRACE))  # fmt: skip
    where = proc.address()
    first = ready_workers(proc, 1)

    async def run() -> list[Any]:
        return await _close_codes(await _open(where, 4), 15)

    codes = asyncio.run(run())
    assert codes == [1012] * 4, (codes, proc.stderr[-2000:])
    assert "served 4 requests (--max-requests)" in proc.stderr
    assert _told(proc, 1012, 4), proc.stderr[-2000:]
    assert proc.stderr.count("ws-disconnect 1012") == 4, proc.stderr[-2000:]
    assert wait_until(lambda: not alive(first[0]), GRACE + 2)
    proc.signal(signal.SIGTERM)
    assert proc.wait(GRACE + 5) == 0


def test_sigterm_to_the_arbiter_still_closes_websockets_with_1001(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--interface", "asgi", "--workers", "2",
                         "--graceful-timeout", str(GRACE))  # fmt: skip
    where = proc.address()
    ready_workers(proc, 2)
    codes = asyncio.run(_signal_and_wait(where, proc, signal.SIGTERM, 10))
    assert codes == [1001] * 10, codes
    assert proc.wait(GRACE + 5) == 0
    assert proc.stderr.count("ws-disconnect 1001") == 10, proc.stderr[-2000:]
    assert "ws-disconnect 1012" not in proc.stderr
