"""A small flood: hundreds of silent connections and dozens of trickling ones hold no thread,
so a fresh request is still answered at once, and the tricklers get 408 on time."""

from __future__ import annotations

import resource
import socket
import threading
import time

import pytest

from tests.conftest import StartServer, addr
from tests.wire import Reader, connect, get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]

SILENT = 300
TRICKLING = 40


def test_flood_of_silent_and_trickling_connections(start_server: StartServer) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * (SILENT + TRICKLING) + 100:
        pytest.skip(f"RLIMIT_NOFILE {soft} too low for the flood")
    server = start_server(header_timeout=1.5, threads=2)
    where = addr(server)
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        for _ in range(SILENT):
            socks.append(connect(where))
        tricklers = [connect(where) for _ in range(TRICKLING)]
        socks.extend(tricklers)
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

        def trickle() -> None:  # one byte to each, every 50 ms, until told to stop
            for i in range(len(head)):
                if stop.wait(0.05):
                    return
                for sock in tricklers:
                    try:
                        sock.send(head[i : i + 1])
                    except OSError:
                        pass

        feeder = threading.Thread(target=trickle, name="test-trickler")
        feeder.start()
        started = time.monotonic()
        time.sleep(0.3)
        t0 = time.monotonic()
        resp = get(where, timeout=2)
        assert resp.status == 200
        assert time.monotonic() - t0 < 1.5  # answered at once (~1 s, slack for a busy CI box)

        # the tricklers never finish a head: 408 after the header timeout, from accept
        statuses = []
        for sock in tricklers:
            sock.settimeout(3)
            statuses.append(Reader(sock).read_response().status)
        elapsed = time.monotonic() - started
        assert statuses == [408] * TRICKLING
        assert 1.0 < elapsed < 5.0
        silent = Reader(socks[0])
        assert silent.closed(2) and silent.buf == b""  # silent ones are closed without a word
        stop.set()
        feeder.join(5)
        assert get(where, timeout=2).status == 200
    finally:
        stop.set()
        for sock in socks:
            sock.close()
