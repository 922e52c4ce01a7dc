"""The WebSocket session on an event loop, without sockets: a connection fed bytes through a
transport that records what is written, so each rule of server/aio/websocket.py is checked
deterministically (the same rules over real sockets: tests/integration/test_websocket_*)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kakehashi.asgi import ScopeBuilder
from kakehashi.http1 import Role
from kakehashi.server import ServerConfig
from kakehashi.server.aio.connection import HTTPConnection
from kakehashi.server.aio.context import AioContext
from kakehashi.server.aio.record import access_log
from kakehashi.websocket import CloseReceived, Connection, Ping, Pong, TextMessage

HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Transport:
    """What HTTPConnection uses of an asyncio transport."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = self.aborted = False
        self.reading = True
        self.buffered = 0  # what get_write_buffer_size() says

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return self.buffered


class Harness:
    """One connection of a server context, a client core to make and read frames."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: App, **settings: Any) -> None:
        config = ServerConfig(**settings)
        scopes = ScopeBuilder(("127.0.0.1", 8000), "", {})
        access = access_log(config.access_log_format, enabled=False)
        self.ctx = AioContext(app, config, loop, scopes, "http", access)
        self.conn = HTTPConnection(self.ctx)
        self.transport = Transport()
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        self.client = Connection(Role.CLIENT)
        self.head = b""

    async def upgrade(self, extra: bytes = b"") -> None:
        self.conn.data_received(HANDSHAKE + extra)
        await settle()
        head, sep, rest = bytes(self.transport.data).partition(b"\r\n\r\n")
        assert sep, self.transport.data
        self.head = head
        self.transport.data.clear()
        if rest:
            self.client.receive_data(rest)

    def events(self) -> list[Any]:
        self.client.receive_data(bytes(self.transport.data))
        self.transport.data.clear()
        return list(self.client.events())

    def lose(self) -> None:
        self.conn.connection_lost(None)


async def settle() -> None:
    for _ in range(20):  # the application's task runs between these
        await asyncio.sleep(0)


def run(test: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(test(loop))
    finally:
        pending = asyncio.all_tasks(loop)  # applications still waiting: cancelled
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        loop.close()


def recorder(seen: list[dict[str, Any]], read: bool = True) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.accept"})
        while read:
            message = await receive()
            seen.append(message)
            if message["type"] == "websocket.disconnect":
                return
        await asyncio.sleep(3600)

    return app


def test_accept_echo_and_the_peers_close() -> None:
    seen: list[dict[str, Any]] = []

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder(seen))
        await h.upgrade(h.client.send_text("early"))  # sent before the 101 came
        assert h.head.startswith(b"HTTP/1.1 101 ")
        h.conn.data_received(h.client.send_bytes(b"\x01") + h.client.send_close(4001, "bye"))
        assert h.conn.ws is not None and h.conn.ws.queue[-1] == {
            "type": "websocket.receive", "bytes": b"\x01"
        }  # fmt: skip
        await settle()
        assert h.events() == [CloseReceived(4001, "")]  # the echo
        assert h.transport.closed  # the server closes the TCP connection first
        h.lose()
        await settle()

    run(test)
    assert seen == [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "early"},
        {"type": "websocket.receive", "bytes": b"\x01"},
        {"type": "websocket.disconnect", "code": 4001, "reason": "bye"},
    ]


def test_a_full_queue_pauses_reading_until_the_app_takes_one() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        waiting: list[Any] = []

        async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            waiting.append(receive)
            await asyncio.sleep(3600)

        h = Harness(loop, slow, ws_max_queue=2)
        await h.upgrade()
        h.conn.data_received(b"".join(h.client.send_text(str(i)) for i in range(5)))
        await settle()
        assert not h.transport.reading
        session = h.conn.ws
        assert session is not None and len(session.queue) == 2
        assert (await waiting[0]())["text"] == "0"
        assert len(session.queue) == 2 and not h.transport.reading  # the next one came in
        for n in "1234":
            assert (await waiting[0]())["text"] == n
        assert h.transport.reading
        h.lose()
        await settle()

    run(test)


def test_pings_are_answered_and_not_read_while_the_peer_does_not_read() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder([]))
        await h.upgrade()
        h.conn.data_received(h.client.send_ping(b"a"))
        await settle()
        assert [(type(e), e.payload) for e in h.events()] == [(Pong, b"a")]
        h.conn.pause_writing()  # the transport's buffer is over its high-water mark
        h.conn.data_received(h.client.send_ping(b"b") * 100)
        await settle()
        assert not h.transport.reading and h.transport.data == b""
        h.conn.resume_writing()
        await settle()
        assert h.transport.reading
        pongs = h.events()
        assert 1 <= len(pongs) <= 100
        h.lose()
        await settle()

    run(test)


@pytest.mark.parametrize(("raises", "code"), [(False, 1000), (True, 1011)])
def test_the_app_ending_closes_with_1000_or_1011(raises: bool, code: int) -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "last"})
            if raises:
                raise RuntimeError("boom")

        h = Harness(loop, app)
        await h.upgrade()
        await settle()
        assert h.events() == [TextMessage("last"), CloseReceived(code, "")]
        assert not h.transport.closed  # the peer's answer is awaited
        h.conn.data_received(h.client.data_to_send())  # the client core's echo
        await settle()
        assert h.transport.closed
        h.lose()

    run(test)


def test_shutdown_says_1001_and_tells_the_app_at_once() -> None:
    seen: list[dict[str, Any]] = []

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder(seen))
        await h.upgrade()
        assert h.conn.ws is not None
        h.conn.ws.going_away(1001)
        await settle()
        assert seen[-1] == {"type": "websocket.disconnect", "code": 1001,
                            "reason": "server shutting down"}  # fmt: skip
        assert h.events() == [CloseReceived(1001, "server shutting down")]
        late = Connection(Role.CLIENT)  # frames the client sent before it saw our close
        h.conn.data_received(late.send_text("dropped") + late.send_close(1001))
        await settle()
        assert h.transport.closed
        h.lose()
        await settle()

    run(test)
    assert [m["type"] for m in seen] == ["websocket.connect", "websocket.disconnect"]


def test_a_missing_pong_frees_the_connection() -> None:
    seen: list[dict[str, Any]] = []

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder(seen), ws_ping_interval=1, ws_ping_timeout=2)
        await h.upgrade()
        start = h.ctx.now
        h.conn.check(start + 1)  # the ping goes out
        assert [type(e) for e in h.events()] == [Ping]
        h.conn.check(start + 2)
        assert not h.transport.aborted
        h.conn.check(loop.time() + 2.5)  # no pong
        assert h.transport.aborted
        h.lose()
        await settle()

    run(test)
    assert seen[-1]["code"] == 1006 and "ping" in seen[-1]["reason"]


def test_a_pong_in_time_keeps_it_and_is_measured() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder([]), ws_ping_interval=1, ws_ping_timeout=2)
        await h.upgrade()
        h.conn.check(h.ctx.now + 1)
        (ping,) = h.events()
        h.conn.data_received(h.client.send_pong(ping.payload))
        await settle()
        assert len(h.ctx.ws.ping_rtts) == 1
        h.conn.check(loop.time() + 2.5)
        assert not h.transport.aborted
        h.lose()
        await settle()

    run(test)


def test_an_unanswered_close_is_cut_at_its_deadline() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
            await asyncio.sleep(3600)

        h = Harness(loop, app, ws_close_timeout=1)
        await h.upgrade()
        await settle()
        h.conn.check(h.ctx.now + 0.5)
        assert not h.transport.aborted
        h.conn.check(h.ctx.now + 1.5)
        assert h.transport.aborted
        h.lose()
        await settle()

    run(test)


def test_refusals_are_http_answers() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        async def closes(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.close"})

        h = Harness(loop, closes)
        h.conn.data_received(HANDSHAKE)
        await settle()
        assert h.transport.data.startswith(b"HTTP/1.1 403 ") and h.transport.closed
        h.lose()
        h = Harness(loop, closes)
        h.ctx.stopping = True
        h.conn.data_received(HANDSHAKE)
        assert h.transport.data.startswith(b"HTTP/1.1 503 ")
        h = Harness(loop, closes)
        h.conn.data_received(HANDSHAKE.replace(b"Version: 13", b"Version: 7"))
        assert h.transport.data.startswith(b"HTTP/1.1 426 ")
        await settle()

    run(test)


def test_a_slow_reader_is_cut_and_the_app_sees_1008() -> None:
    seen: list[dict[str, Any]] = []

    async def test(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, recorder(seen), send_timeout=1)
        await h.upgrade()
        h.transport.buffered = 100_000  # nothing of it is taken
        now = h.ctx.now
        h.conn.check(now)
        h.conn.check(now + 2)
        assert h.transport.aborted
        h.lose()
        await settle()

    run(test)
    assert seen[-1]["code"] == 1008 and seen[-1]["reason"].startswith("slow reader")
