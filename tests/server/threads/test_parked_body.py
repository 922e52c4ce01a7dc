"""ParkedBody and BodyBudget: how a body read ahead of its application is held, in memory
or (a chunked body past the limit) in a temporary file."""

from __future__ import annotations

import contextlib
import select
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.errors import RemoteProtocolError
from kakehashi.http1 import DEFAULT_LIMITS, Limits, Request, maybe_parse_request_head
from kakehashi.server.threads.input import BufferedInput
from kakehashi.server.threads.parked_body import BodyBudget, ParkedBody

MIB = 1 << 20


def _request(length: int) -> Request:
    head = b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length
    parsed = maybe_parse_request_head(head, 0, DEFAULT_LIMITS)
    assert parsed is not None
    return parsed[0]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


def _park(budget: BodyBudget, data: bytes, first: int) -> ParkedBody:
    return ParkedBody(_request(len(data)), data[:first], budget, DEFAULT_LIMITS, MIB)


def _receive_some(body: ParkedBody, sock: socket.socket) -> None:
    select.select([sock], [], [], 5)
    with contextlib.suppress(BlockingIOError):
        body.receive(sock)


def _receive_all(body: ParkedBody, sock: socket.socket) -> None:
    while not body.complete():
        _receive_some(body, sock)


def test_once_a_tenth_is_here_the_body_gets_its_whole_length(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    data = bytes(range(256)) * 4096  # 1 MiB
    budget = BodyBudget(64 * MIB)
    body = _park(budget, data, 65_000)
    assert budget.used == 2 * 65_000  # less than a tenth: the buffer doubles
    client.sendall(data[65_000:200_000])
    while body.received < 200_000:
        _receive_some(body, server)
    assert budget.used == MIB  # once it is full, a tenth is here: one buffer for all of it
    assert budget.pooled == 0  # the doubled buffer it left is not kept for whole bodies
    sender = threading.Thread(target=client.sendall, args=(data[200_000:],))
    sender.start()
    _receive_all(body, server)
    sender.join()
    assert bytes(body.body()[: body.received]) == data


def test_a_trickled_body_holds_only_what_arrived(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    data = b"x" * MIB
    budget = BodyBudget(64 * MIB)
    body = _park(budget, data, 1)
    assert budget.used <= 8192
    client.sendall(data[1:2001])
    body.receive(server)
    assert body.received == 2001 and budget.used <= 8192
    body.release()
    assert budget.used == 0


def test_buffers_are_reused_and_read_no_further_than_the_body(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    budget = BodyBudget(64 * MIB)
    budget.recycle(bytearray(300_000))  # longer than the next body: it must stop at its end
    data = bytes(range(251)) * 1000  # 251,000 bytes
    body = _park(budget, data, 50_000)
    assert budget.pooled == 0  # the pooled buffer was taken
    client.sendall(data[50_000:] + b"GET / HTTP/1.1\r\n")
    _receive_all(body, server)
    assert server.recv(100) == b"GET / HTTP/1.1\r\n"  # the next request stayed in the socket
    buf = body.body()
    stream = BufferedInput(buf, body.received)
    assert stream.read(1000) + stream.read() == data
    stream.close()
    body.recycle()
    assert budget.pooled == 300_000 and budget.used == 0
    again = _park(budget, data, 50_000)
    assert again.body() is buf  # the same buffer serves the next body


def test_the_pool_is_bounded() -> None:
    budget = BodyBudget(64 * MIB)
    for _ in range(40):
        budget.recycle(bytearray(MIB))
    budget.recycle(bytearray(1000))  # small buffers are not kept
    assert budget.pooled <= 16 * MIB
    assert budget.buffer(MIB) is not budget.buffer(MIB)
    assert len(budget.buffer(10 * MIB)) == 10 * MIB  # none fits: a new one


def test_over_the_budget_the_body_is_handed_over_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    data = bytes(range(256)) * 1600  # 409,600 bytes
    budget = BodyBudget(100_000)
    body = _park(budget, data, 30_000)  # a slow start: the buffer doubles
    assert not body.hand_over and budget.used == 60_000
    client.sendall(data[30_000:200_000])
    while not body.hand_over and not body.complete():
        body.receive(server)
    assert body.hand_over
    rest = body.handover()
    assert rest.prefix == data[: len(rest.prefix)]
    assert rest.remaining == len(data) - len(rest.prefix)
    assert budget.used == 0


def test_a_pooled_buffer_is_taken_at_once_before_a_tenth_arrived(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    data = bytes(range(256)) * 4096  # 1 MiB
    budget = BodyBudget(64 * MIB)
    slow = _park(budget, data, 1000)  # the pool is empty: a small buffer that doubles
    assert budget.used < 16 * 1024
    budget.recycle(bytearray(MIB))  # a whole body's buffer, pooled
    body = _park(budget, data, 1000)  # far less than a tenth, yet it takes the pooled one
    assert budget.pooled == 0 and budget.used >= MIB
    sender = threading.Thread(target=client.sendall, args=(data[1000:],))
    sender.start()
    _receive_all(body, server)
    sender.join()
    assert bytes(body.body()[: body.received]) == data
    body.recycle()
    slow.release()
    assert budget.pooled == MIB and budget.used == 0


# -- chunked bodies: in memory up to the limit, then spooled to a file ------------------------


def _chunked_request() -> Request:
    head = b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    parsed = maybe_parse_request_head(head, 0, DEFAULT_LIMITS)
    assert parsed is not None
    return parsed[0]


def _chunked(data: bytes, piece: int) -> bytes:
    """``data`` in the chunked coding, ``piece`` bytes a chunk."""
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _park_chunked(
    budget: BodyBudget, first: bytes, limit: int = MIB, limits: Limits = DEFAULT_LIMITS
) -> ParkedBody:
    return ParkedBody(_chunked_request(), first, budget, limits, limit)


def _receive_sent(
    body: ParkedBody, server: socket.socket, client: socket.socket, wire: bytes
) -> None:
    sender = threading.Thread(target=client.sendall, args=(wire,))
    sender.start()
    _receive_all(body, server)
    sender.join()


def test_a_chunked_body_within_the_limit_stays_in_memory() -> None:
    budget = BodyBudget(64 * MIB)
    data = bytes(range(256)) * 40  # 10,240 bytes
    body = _park_chunked(budget, _chunked(data, 1000))
    assert body.complete()
    assert body.spool is None and body.received == len(data)
    assert budget.used == len(data)  # held in memory, against the budget
    assert bytes(body.body()) == data
    assert budget.used == 0
    body.recycle()


def test_a_chunked_body_past_the_limit_moves_to_a_file(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    budget = BodyBudget(64 * MIB)
    data = bytes(range(251)) * 1600  # 401,600 bytes in chunks of 1,000: gathered writes
    body = _park_chunked(budget, b"", limit=64 * 1024)
    _receive_sent(body, server, client, _chunked(data, 1000) + b"GET /next")
    spool = body.spool
    assert spool is not None
    assert budget.used == 0  # what memory held went to the file with the rest
    assert spool.staged == 0 and spool.written == len(data)  # nothing left staged
    assert body.received == len(data) and not body.hand_over
    assert body.body() == b""  # the body is in the file, not in memory
    assert body.leftover() == b"GET /next"  # a pipelined request stays out of the file
    stream = spool.reader()
    assert stream.readline(10) + stream.read(5000) + stream.read() == data
    stream.close()
    body.recycle()
    assert spool.file.closed and body.spool is None


def test_past_the_budget_a_chunked_body_moves_to_a_file_at_once() -> None:
    budget = BodyBudget(4096)
    data = b"y" * 10_000
    body = _park_chunked(budget, _chunked(data, 3000))
    assert body.complete()
    assert body.spool is not None and budget.used == 0  # the budget was never passed
    with body.spool.reader() as stream:
        assert stream.read() == data
    body.recycle()


def test_a_chunked_body_past_max_body_bytes_is_413_and_its_file_is_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    budget = BodyBudget(64 * MIB)
    limits = Limits(max_body_bytes=300_000)
    body = _park_chunked(budget, b"", limit=64 * 1024, limits=limits)
    within = _chunked(b"z" * 200_000, 50_000).removesuffix(b"0\r\n\r\n")  # within the limit
    sender = threading.Thread(target=client.sendall, args=(within + b"%x\r\n" % 150_000,))
    sender.start()  # then a chunk of 150,000 more, past it
    with pytest.raises(RemoteProtocolError) as refused:
        _receive_all(body, server)
    sender.join()
    assert refused.value.status_hint == 413
    spool = body.spool
    assert spool is not None
    body.discard()  # as when the connection closes
    assert spool.file.closed and budget.used == 0


def test_a_spool_file_that_cannot_be_created_is_an_oserror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    budget = BodyBudget(64 * MIB)
    body = _park_chunked(budget, _chunked(b"w" * 5000, 1000), limit=2000)
    with pytest.raises(OSError):
        body.complete()
    body.discard()
    assert budget.used == 0
