"""OutputBuffer over a real socketpair: order, memory bound and spooling, file regions, held
bodies, and what ``discard`` releases."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.server.engine.pace import SendPace
from kakehashi.server.threads.outbuf import OutputBuffer

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.setblocking(False)
    client.settimeout(2)
    yield server, client
    server.close()
    client.close()


def buffer(memory: int = 1000, limit: int = 1 << 30) -> OutputBuffer:
    return OutputBuffer(memory, limit, SendPace(30.0, 1, 60.0))


def drain(out: OutputBuffer, server: socket.socket, client: socket.socket) -> bytes:
    got = bytearray()
    for _ in range(100_000):
        out.send(server)
        if not out.total:
            break
        got += client.recv(65536)
    server.shutdown(socket.SHUT_WR)
    while data := client.recv(65536):
        got += data
    return bytes(got)


def test_memory_then_spool_in_order(pair: tuple[socket.socket, socket.socket]) -> None:
    out = buffer(memory=1000)
    pieces = [b"a" * 600, b"b" * 600, b"c" * 100, b"d" * 300_000, b"e" * 10]
    for piece in pieces:
        out.append(piece)
    assert out.total == sum(map(len, pieces))
    # "b" did not fit in memory: spooled; "c" was staged for the spool and written with "d";
    # "e" is staged (in memory, counted) until the spool is read up to it
    assert out.memory == 600 + 10
    assert out.peak_memory <= 1000
    assert drain(out, *pair) == b"".join(pieces)
    assert out.total == out.memory == 0


def test_what_is_queued_in_memory_is_not_copied() -> None:
    out = buffer(memory=1 << 20)
    piece = os.urandom(5000)
    out.append(memoryview(piece)[10:])
    assert all(memoryview(item).obj is piece for item in out._items)  # type: ignore[arg-type]


def test_a_held_body_is_referenced_and_not_counted(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    out = buffer(memory=10)
    head, body = b"HEAD\r\n", os.urandom(200_000)
    out.hold([head, body, b"tail"], skip=3)
    assert out.held == out.total == len(head) + len(body) + 4 - 3
    assert out.memory == out.bounded == 0  # nothing the pause limit counts
    assert memoryview(out._items[1]).obj is body  # type: ignore[arg-type]
    assert drain(out, *pair) == (head + body + b"tail")[3:]
    assert out.held == 0


def test_file_region_is_sent_then_closed(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    closed = []
    with path.open("rb") as f:
        out = buffer()
        out.append(b"head")
        out.add_file(f.fileno(), 10, len(data) - 10, lambda: closed.append(out.total))
        out.append(b"after")
        assert out.in_files == len(data) - 10 and out.bounded == len(b"headafter")
        assert drain(out, *pair) == b"head" + data[10:] + b"after"
        assert out.in_files == 0
    assert len(closed) == 1 and not out.truncated


def test_a_file_shorter_than_its_region_truncates(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    with path.open("rb") as f:
        out = buffer()
        out.add_file(f.fileno(), 0, 50, lambda: None)
        assert drain(out, *pair) == b"12345"
    assert out.truncated and out.total == out.in_files == 0


def test_discard_closes_spool_files_and_runs_pending_closes(tmp_path: Path) -> None:
    out = buffer(memory=10)
    out.append(b"x" * 1000)  # spooled
    spool = out._items[0]
    closed = []
    out.add_file(0, 0, 10, lambda: closed.append(True))
    out.discard()
    assert spool.file.closed  # type: ignore[union-attr]
    assert closed == [True]
    assert out.total == out.memory == 0 and not out._items


def test_a_closed_peer_is_client_disconnected(pair: tuple[socket.socket, socket.socket]) -> None:
    from kakehashi.errors import ClientDisconnected

    server, client = pair
    client.close()
    out = buffer()
    out.append(b"x" * 100_000)
    with pytest.raises(ClientDisconnected):
        for _ in range(100):
            out.send(server)
    out.discard()
