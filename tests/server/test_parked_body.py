"""ParkedBody and BodyBudget: how a body read ahead of its application is held in memory."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

import pytest

from kakehashi.http1 import DEFAULT_LIMITS, Request, maybe_parse_request_head
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
