"""Real frameworks' WebSocket endpoints, unchanged, through ``kakehashi serve`` on both loops,
with the ``websockets`` library as the client (tests/asgi_frameworks/ws_apps.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
LOOPS = ["asyncio", "uvloop"]
APPS = "tests.asgi_frameworks.ws_apps"


def where(serve_process: Spawn, app: str, loop: str) -> str:
    return serve_process(f"{APPS}:{app}", "--port", "0", "--loop", loop).address()


@pytest.mark.parametrize("loop", LOOPS)
def test_fastapi_websocket(serve_process: Spawn, loop: str) -> None:
    address = where(serve_process, "fastapi_app", loop)
    with connect(f"ws://{address}/ws/tea", subprotocols=["json"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "json"
        for n in range(3):
            ws.send(json.dumps({"n": n}))
            assert json.loads(ws.recv(timeout=5)) == {"room": "tea", "got": {"n": n}}


@pytest.mark.parametrize("loop", LOOPS)
def test_starlette_websocket_and_its_close_code(serve_process: Spawn, loop: str) -> None:
    with connect(f"ws://{where(serve_process, 'starlette_app', loop)}/echo") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "HELLO"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(timeout=5)
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (4000, "asked to")


@pytest.mark.parametrize("loop", LOOPS)
def test_quart_websocket(serve_process: Spawn, loop: str) -> None:
    with connect(f"ws://{where(serve_process, 'quart_app', loop)}/ws") as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "quart: ping"


@pytest.mark.parametrize("loop", LOOPS)
def test_django_channels_consumer(serve_process: Spawn, loop: str) -> None:
    pytest.importorskip("channels")
    address = where(serve_process, "channels_application()", loop)
    with connect(f"ws://{address}/ws/echo/") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "channels: hi"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
