"""The ASGI WebSocket rules (asgiref www.rst; docs/websocket.md, "ASGI"), over real sockets on
the asyncio engine, both loops, with the ``websockets`` library as the client (and a raw
client where the test must misbehave)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from kakehashi.websocket import CloseReceived, TextMessage
from tests.conftest import addr
from tests.integration.wsraw import RawWebSocket, close_raw_sockets  # noqa: F401
from tests.wire import get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(params=["asyncio", "uvloop"])
def serve(request: pytest.FixtureRequest, start_asgi: Any) -> Any:
    """``serve(app, **config)``: the address of an AsyncServer on the loop under test."""

    def start(app: Any, **settings: Any) -> str:
        return addr(start_asgi(app, loop=request.param, **settings))

    return start


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.01)
    raise AssertionError("not within the time")


def ws_only(handler: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await handler(scope, receive, send)

    return app


@ws_only
async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})  # fmt: skip


def recorder() -> tuple[list[dict[str, Any]], Any]:
    """An app that accepts, records every message it receives, and echoes text."""
    seen: list[dict[str, Any]] = []

    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "websocket.disconnect":
                return

    return seen, app


def test_echo_text_and_bytes(serve: Any) -> None:
    with connect(f"ws://{serve(echo)}/") as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"
        big = b"x" * 300_000
        ws.send(big)
        assert ws.recv(timeout=5) == big


def test_scope_and_accept_with_subprotocol_and_headers(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "two",
                    "headers": [(b"x-room", b"7")]})  # fmt: skip
        await send({"type": "websocket.close"})

    with connect(f"ws://{serve(app)}/room?x=1", subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "two"
        assert ws.response.headers["x-room"] == "7"
    (scope,) = scopes
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["path"] == "/room" and scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["one", "two"]
    assert "websocket.http.response" in scope["extensions"]


def test_close_before_accept_is_a_403(serve: Any) -> None:
    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://{serve(app)}/")
    assert caught.value.response.status_code == 403


def test_a_denial_with_any_status_and_body(serve: Any) -> None:
    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": b"log in first"})

    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://{serve(app)}/")
    assert caught.value.response.status_code == 401
    assert caught.value.response.body == b"log in first"


def test_disconnect_carries_the_peers_code_and_reason(serve: Any) -> None:
    seen, app = recorder()
    with connect(f"ws://{serve(app)}/") as ws:
        ws.close(4001, "done here")
    assert eventually(lambda: seen and seen[-1]["type"] == "websocket.disconnect")
    assert seen[-1] == {"type": "websocket.disconnect", "code": 4001, "reason": "done here"}


def test_a_close_without_a_code_is_1005(serve: Any) -> None:
    seen, app = recorder()
    raw = RawWebSocket(serve(app))
    raw.send(raw.ws.send_close(None))
    assert raw.closed_within(5)
    assert eventually(lambda: seen and seen[-1]["type"] == "websocket.disconnect")
    assert seen[-1]["code"] == 1005


def test_messages_sent_before_a_close_are_delivered_in_order(serve: Any) -> None:
    seen: list[dict[str, Any]] = []

    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(0.3)  # everything below has arrived by now
        while (message := await receive())["type"] != "websocket.disconnect":
            seen.append(message)
        seen.append(message)
        seen.append(await receive())  # again: the disconnect, not an error or a hang

    raw = RawWebSocket(serve(app))
    raw.send(b"".join(raw.ws.send_text(str(i)) for i in range(50)) + raw.ws.send_close(1000))
    assert raw.closed_within(5)
    assert eventually(lambda: len(seen) == 52)
    assert [m["text"] for m in seen[:50]] == [str(i) for i in range(50)]
    assert seen[50] == seen[51] == {"type": "websocket.disconnect", "code": 1000, "reason": ""}


@pytest.mark.parametrize(("fails", "code"), [(False, 1000), (True, 1011)])
def test_the_app_ending_closes_the_socket(serve: Any, fails: bool, code: int) -> None:
    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        if fails:
            raise RuntimeError("boom")

    with connect(f"ws://{serve(app)}/") as ws, pytest.raises(ConnectionClosed) as caught:
        ws.recv(timeout=5)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == code


def test_the_socket_ending_tells_the_app(serve: Any) -> None:
    seen, app = recorder()
    raw = RawWebSocket(serve(app))
    raw.send(raw.ws.send_text("last words"))
    raw.close()  # no Close frame: 1006
    assert eventually(lambda: seen and seen[-1]["type"] == "websocket.disconnect")
    assert seen[-2] == {"type": "websocket.receive", "text": "last words"}
    assert seen[-1]["code"] == 1006


def test_send_after_the_peer_left_raises_an_oserror(serve: Any) -> None:
    errors: list[BaseException] = []

    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the disconnect
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            errors.append(exc)

    with connect(f"ws://{serve(app)}/") as ws:
        ws.close()
    assert eventually(lambda: errors)


def test_permessage_deflate_is_negotiated(serve: Any) -> None:
    with connect(f"ws://{serve(echo)}/") as ws:  # websockets offers it by default
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        text = "compress me " * 10_000
        ws.send(text)
        assert ws.recv(timeout=5) == text


def test_compression_can_be_turned_off_and_has_a_budget(serve: Any) -> None:
    address = serve(echo, ws_deflate_budget=1)
    with connect(f"ws://{address}/") as first:
        assert "sec-websocket-extensions" in first.response.headers
        with connect(f"ws://{address}/") as second:  # over the budget: uncompressed
            assert "sec-websocket-extensions" not in second.response.headers
            second.send("still served")
            assert second.recv(timeout=5) == "still served"
    off = serve(echo, ws_per_message_deflate=False)
    with connect(f"ws://{off}/") as ws:
        assert "sec-websocket-extensions" not in ws.response.headers


def _first_answer(address: str, head: bytes) -> bytes:
    """Send ``head`` on a new connection; what the server answers first (a raw handshake)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head)
        return sock.recv(65536)


def test_an_invalid_handshake_is_an_http_refusal(serve: Any) -> None:
    where = serve(echo)
    answer = _first_answer(where, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                           b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    answer = _first_answer(where, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           b"Sec-WebSocket-Version: 8\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13" in answer


def test_the_upgrade_fields_are_read_in_any_case_and_other_upgrades_are_plain_http(
    serve: Any,
) -> None:
    # The engine looks for the Upgrade field among the scope's lower-cased names: a client
    # spelling it UPGRADE still gets its WebSocket, and an Upgrade to anything else (h2c) is
    # an ordinary request for the application.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await echo(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain " + scope["path"].encode()})

    where = serve(app)
    answer = _first_answer(where, b"GET /ws HTTP/1.1\r\nHOST: x\r\nUPGRADE: WebSocket\r\n"
                           b"CONNECTION: Upgrade\r\nSEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           b"SEC-WEBSOCKET-VERSION: 13\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer  # RFC 6455 §1.3's key and accept
    plain = get(where, "/h2", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n")  # fmt: skip
    assert plain.status == 200 and plain.body == b"plain /h2"


def test_pings_are_sent_and_a_vanished_peer_is_freed(serve: Any) -> None:
    seen, app = recorder()
    raw = RawWebSocket(serve(app, ws_ping_interval=0.2, ws_ping_timeout=0.3))
    raw.ws = type(raw.ws)(raw.ws.role)  # a client that reads but never answers a ping
    start = time.monotonic()
    assert raw.closed_within(5)
    assert time.monotonic() - start < 2.0
    assert eventually(lambda: seen and seen[-1]["type"] == "websocket.disconnect")
    assert seen[-1]["code"] == 1006 and "ping" in seen[-1]["reason"]


def test_a_peer_answering_pings_is_kept(serve: Any) -> None:
    with connect(f"ws://{serve(echo, ws_ping_interval=0.1, ws_ping_timeout=0.5)}/") as ws:
        time.sleep(1.0)  # the client library answers the pings
        ws.send("alive")
        assert ws.recv(timeout=5) == "alive"


def test_a_message_over_the_size_limit_is_1009(serve: Any) -> None:
    seen, app = recorder()
    with connect(f"ws://{serve(app, ws_max_size=1000)}/", compression=None) as ws:
        ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(timeout=5)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009
    assert eventually(lambda: seen and seen[-1]["type"] == "websocket.disconnect")
    assert seen[-1]["code"] == 1009


def test_an_unanswered_close_is_cut_after_the_close_timeout(serve: Any) -> None:
    @ws_only
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})

    raw = RawWebSocket(serve(app, ws_close_timeout=0.3))
    events = raw.events(timeout=2, until=lambda e: isinstance(e, CloseReceived))
    assert events[-1] == CloseReceived(4000, "")
    start = time.monotonic()
    assert raw.closed_within(5)  # we never answer the Close frame
    assert time.monotonic() - start < 2.0


def test_the_server_closes_after_the_close_handshake(serve: Any) -> None:
    raw = RawWebSocket(serve(echo))
    raw.send(raw.ws.send_text("a"))
    assert raw.events(timeout=5, until=lambda e: True) == [TextMessage("a")]
    raw.send(raw.ws.send_close(1000))
    assert raw.events(timeout=5) == [CloseReceived(1000, "")]  # the echo, then the end
    assert raw.closed_within(1)
