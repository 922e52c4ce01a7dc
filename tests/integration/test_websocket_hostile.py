"""Hostile WebSocket peers on real sockets (docs/websocket.md, "Settings and limits"): each is
closed with the right code or kept within bounds, memory stays bounded, and a fresh client's
echo is still answered meanwhile.  Every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import connect

from kakehashi.websocket import CloseReceived, Opcode, Pong, serialize_frame
from tests import ws_apps
from tests.conftest import ServeProcess, addr
from tests.integration.wsraw import RawWebSocket, close_raw_sockets  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MASK = b"\x11\x22\x33\x44"
DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def echo_works(where: str) -> float:
    """A fresh client's round trip, in seconds."""
    with connect(f"ws://{where}/", open_timeout=5) as ws:
        start = time.monotonic()
        ws.send("still there?")
        assert ws.recv(timeout=5) == "still there?"
        return time.monotonic() - start


def close_code(raw: RawWebSocket) -> int | None:
    events = raw.events(timeout=10, until=lambda e: isinstance(e, CloseReceived))
    closes = [e for e in events if isinstance(e, CloseReceived)]
    return closes[0].code if closes else None


@pytest.fixture
def where(start_asgi: Any) -> str:
    return addr(start_asgi(ws_apps.echo))


def test_a_compression_bomb_is_1009_and_memory_stays_bounded(where: str) -> None:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(16 << 20)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(64))  # 1 GiB of zeros
    bomb += squeeze.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb.removesuffix(b"\x00\x00\xff\xff")
    assert len(bomb) < 2 << 20  # one small message
    before = rss_kib()
    raw = RawWebSocket(where, extra=DEFLATE)
    assert b"permessage-deflate" in raw.head
    raw.send(serialize_frame(Opcode.BINARY, bomb, rsv=4, mask=MASK))
    assert close_code(raw) == 1009
    assert rss_kib() - before < 100 * 1024  # inflated at most --ws-max-size (16 MiB)
    echo_works(where)


@pytest.mark.parametrize(("length", "codes"), [(1 << 63, (1002,)), ((1 << 63) - 1, (1009,))])
def test_a_header_announcing_2_63_bytes(where: str, length: int, codes: tuple[int]) -> None:
    raw = RawWebSocket(where)
    raw.send(b"\x82\xff" + struct.pack("!Q", length) + MASK + b"xxxx")
    assert close_code(raw) in codes
    assert raw.closed_within(5)
    echo_works(where)


def test_an_unmasked_client_frame_is_1002(where: str) -> None:
    raw = RawWebSocket(where)
    raw.send(serialize_frame(Opcode.TEXT, b"bare"))
    assert close_code(raw) == 1002
    echo_works(where)


def test_invalid_utf8_is_1007_at_the_first_bad_piece(where: str) -> None:
    raw = RawWebSocket(where)
    # The first fragment already holds a byte that can never be UTF-8; the message never ends.
    raw.send(serialize_frame(Opcode.TEXT, b"ok \xff", fin=False, mask=MASK))
    assert close_code(raw) == 1007
    echo_works(where)


def test_10000_pings_are_answered_within_bounds(where: str) -> None:
    raw = RawWebSocket(where)
    ping = serialize_frame(Opcode.PING, b"p" * 125, mask=MASK)
    raw.send(ping * 10_000)
    raw.send(raw.ws.send_text("after the pings"))
    events = raw.events(timeout=10, until=lambda e: not isinstance(e, Pong))
    pongs = [e for e in events if isinstance(e, Pong)]
    assert 1 <= len(pongs) <= 10_000
    assert events[-1].data == "after the pings"  # type: ignore[union-attr]
    echo_works(where)


def test_a_reader_taking_1_kib_a_second_is_dropped_in_bounded_time(start_asgi: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def firehose(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        chunk = b"x" * 65536
        try:
            for _ in range(800):  # 50 MiB at most
                await send({"type": "websocket.send", "bytes": chunk})
        except OSError:
            pass
        seen.append(await receive())

    where = addr(start_asgi(firehose, send_timeout=1, send_min_rate=65536, send_rate_window=2))
    host, port = where.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    before = rss_kib()
    start = time.monotonic()
    sock.settimeout(1.0)
    while not seen and time.monotonic() - start < 15:
        try:
            if not sock.recv(1024):
                break
        except (TimeoutError, ConnectionResetError):
            pass
        time.sleep(1.0)  # 1 KiB a second
    sock.close()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen and seen[0]["code"] == 1008, seen
    assert time.monotonic() - start < 12
    assert rss_kib() - before < 50 * 1024  # send() waited: nothing piled up


def test_a_flooding_client_pauses_only_itself(start_asgi: Any) -> None:
    taken: list[int] = []

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await ws_apps.echo(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        if scope["path"] == "/echo":
            while (m := await receive())["type"] != "websocket.disconnect":
                await send({"type": "websocket.send", "text": m["text"]})
            return
        await asyncio.sleep(3)  # reads nothing for a while
        taken.append(1)

    server = start_asgi(slow, ws_max_queue=4)
    where = addr(server)
    raw = RawWebSocket(where, path="/flood")
    raw.sock.setblocking(False)
    frame = raw.ws.send_bytes(b"f" * 16384)
    out = b""
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < 2 and sent < 1 << 30:  # until TCP pushes back
        out = out or frame  # whole frames only, however the kernel cuts them
        try:
            n = raw.sock.send(out)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        sent += n
        out = out[n:]
    assert sent < 64 << 20  # the server stopped reading: the kernel buffers filled
    with connect(f"ws://{where}/echo") as ws:  # everyone else is served meanwhile
        rtts = []
        for i in range(50):
            t = time.monotonic()
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
            rtts.append(time.monotonic() - t)
    assert sorted(rtts)[-1] < 0.5
    raw.close()


def test_1000_idle_websockets_cost_little(serve_process: Callable[..., ServeProcess]) -> None:
    proc = serve_process("tests.ws_apps:echo", "--port", "0", "--interface", "asgi",
                         "--no-ws-per-message-deflate",
                         "--loop", "asyncio")  # fmt: skip
    where = proc.address()
    pid = proc.proc.pid
    warm = [RawWebSocket(where) for _ in range(20)]
    time.sleep(0.3)
    before = rss_kib(pid)
    idle = [RawWebSocket(where) for _ in range(1000)]
    time.sleep(0.5)
    after = rss_kib(pid)
    per = (after - before) * 1024 / 1000
    print(f"\nRSS per idle WebSocket: {per:.0f} bytes ({before} KiB -> {after} KiB)")
    rtts = sorted(echo_works(where) for _ in range(100))
    print(f"echo p99 with 1000 idle: {rtts[98] * 1000:.1f} ms")
    assert rtts[98] < 0.05
    assert per <= 16 * 1024, per
    for ws in idle + warm:
        ws.close()
