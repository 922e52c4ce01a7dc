"""Graceful shutdown of ``kakehashi serve`` processes: signals, in-flight requests, idle
connections, the grace period, a forced exit, and pre-fork workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import ServeProcess
from tests.integration.processes import alive, refused
from tests.wire import Reader, Response, connect, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Spawn = Callable[..., ServeProcess]
APP = "tests.server_apps:app"


def _in_background(where: str, path: str) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(get(where, path, timeout=10))
        except Exception as exc:  # reported by the test
            out.append(exc)

    thread = threading.Thread(target=run, name="test-client")
    thread.start()
    return thread, out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_request_in_flight_finish(serve_process: Spawn, signum: int) -> None:
    proc = serve_process(APP, "--port", "0", "--threads", "2")
    where = proc.address()
    with connect(where) as idle:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        idle_reader = Reader(idle)
        assert idle_reader.read_response().status == 200  # now idle, kept alive
        thread, out = _in_background(where, "/slow?1.2")
        time.sleep(0.3)  # the slow request is running
        proc.signal(signum)
        assert idle_reader.closed(1)  # the idle connection is closed at once
        assert thread.is_alive()  # while the slow request is still running
        assert wait_until(lambda: refused(where), 2)  # no new connections
        thread.join(10)
    resp = out[0]
    assert isinstance(resp, Response), resp
    assert (resp.status, resp.body) == (200, b"slept 1.2")
    assert resp.header("connection") == "close"
    assert proc.wait() == 0
    assert "shutting down gracefully" in proc.stderr


def test_second_sigint_forces_exit(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--graceful-timeout", "20")
    where = proc.address()
    thread, _ = _in_background(where, "/slow?5")
    time.sleep(0.3)
    started = time.monotonic()
    proc.signal(signal.SIGINT)
    assert proc.wait_for("shutting down gracefully")
    proc.signal(signal.SIGINT)
    code = proc.wait(5)
    assert time.monotonic() - started < 3
    assert code != 0
    assert "forced exit" in proc.stderr
    thread.join(10)


def test_graceful_timeout_bounds_a_request_that_never_ends(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--graceful-timeout", "0.5")
    where = proc.address()
    with connect(where) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(100)  # it is streaming
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 3
    assert "still running after 0.5s" in proc.stderr


def test_prefork_workers_serve_and_all_stop(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--threads", "2")
    where = proc.address()
    pids: set[int] = set()
    for _ in range(200):  # the kernel spreads connections over both; bounded
        pids.add(int(get(where, "/pid").body))
        if len(pids) == 2:
            break
        time.sleep(0.01)
    assert len(pids) == 2, pids
    assert proc.proc.pid not in pids  # the parent runs no application
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 5), "orphan workers"
    assert refused(where)


def test_prefork_worker_that_dies_is_replaced(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--threads", "1")
    where = proc.address()
    first = int(get(where, "/pid").body)
    os.kill(first, signal.SIGKILL)  # a worker we started (through our child), by pid
    assert proc.wait_for("starting another", 5)
    seen: set[int] = set()
    for _ in range(200):
        seen.add(int(get(where, "/pid").body))
        if len(seen) == 2:
            break
    assert first not in seen and len(seen) == 2
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in seen), 5)
