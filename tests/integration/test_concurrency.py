"""Threads share the work: a slow request does not hold up fast ones for long."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests import wire
from tests.conftest import StartServer, addr

pytestmark = pytest.mark.integration

SLOW_SECONDS = 1.5


def slow_or_fast(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/slow":
        time.sleep(SLOW_SECONDS)  # an application waiting on a database, say
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_fast_requests_ready_with_a_slow_one_are_not_held_behind_it(
    start_server: StartServer,
) -> None:
    server = start_server(slow_or_fast, threads=4)
    host, port = addr(server).rsplit(":", 1)
    request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(4)]
    try:
        # Make all four ready at the same moment, so that one thread can take them as a batch.
        # The clock starts before the first send: the slow request may begin sleeping before
        # the last send returns (it once measured 1.49978 s when started after the sends).
        started = time.monotonic()
        for i, sock in enumerate(socks):
            sock.sendall(request % (b"/slow" if i == 0 else b"/fast"))
        done: dict[int, float] = {}

        def read(i: int) -> None:
            assert wire.Reader(socks[i]).read_response().status == 200
            done[i] = time.monotonic() - started

        readers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(10)
    finally:
        for sock in socks:
            sock.close()
    assert done[0] >= SLOW_SECONDS
    # Each fast one is answered while the slow one is still running.
    assert all(done[i] < SLOW_SECONDS / 2 for i in (1, 2, 3)), done


def test_more_slow_requests_than_one_run_side_by_side(start_server: StartServer) -> None:
    server = start_server(slow_or_fast, threads=4)
    started = time.monotonic()
    results: list[int] = []

    def get() -> None:
        results.append(wire.get(addr(server), "/slow", timeout=10).status)

    clients = [threading.Thread(target=get) for _ in range(4)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(10)
    assert results == [200] * 4
    assert time.monotonic() - started < 2 * SLOW_SECONDS  # not one after another
