"""Two things a server process does to itself once ready: the heap frozen out of the garbage
collector's full passes (``--gc-freeze``, server/engine/heap.py), and, on uvloop, listeners
that hand connections over at the handshake (net/bind.py ``accept_at_handshake``)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from kakehashi.server import ServerConfig
from kakehashi.server.aio import AsyncServer
from tests.asgi_apps import app as asgi_app
from tests.conftest import ServeProcess
from tests.integration.processes import ready_workers
from tests.wire import get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Spawn = Callable[..., ServeProcess]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_DEFER_ACCEPT")

APPS = {
    "wsgi": ("tests.server_apps:app",),
    "asgi-asyncio": ("tests.asgi_apps:app", "--loop", "asyncio"),
    "asgi-uvloop": ("tests.asgi_apps:app", "--loop", "uvloop"),
}


def _frozen_at_start() -> int:
    """What this interpreter holds frozen before any server runs (CPython 3.12.1 freezes 375
    objects of its own at startup; 3.11 and 3.13 none)."""
    code = "import gc; print(gc.get_freeze_count())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True).stdout)


@pytest.mark.parametrize("kind", ["asgi-asyncio", "asgi-uvloop"])
def test_an_asgi_process_freezes_its_heap_once_ready(serve_process: Spawn, kind: str) -> None:
    proc = serve_process(*APPS[kind], "--port", "0")
    at_start = _frozen_at_start()
    # The banner comes once the listeners are bound; a request can be answered while the
    # lifespan startup still runs, just before the freeze: asked again until it is done.
    deadline = time.monotonic() + 5
    while (frozen := int(get(proc.address(), "/frozen").body)) <= at_start:
        assert time.monotonic() < deadline, "the heap was not frozen within 5 s"
        time.sleep(0.05)
    # The application, its imports and the server: thousands of objects, none walked again.
    assert frozen > at_start + 5_000


def test_no_gc_freeze_leaves_the_heap_alone(serve_process: Spawn) -> None:
    proc = serve_process(*APPS["asgi-uvloop"], "--port", "0", "--no-gc-freeze")
    assert int(get(proc.address(), "/frozen").body) == _frozen_at_start()


def test_the_thread_engine_does_not_freeze_and_says_the_flag_means_nothing(
    serve_process: Spawn,
) -> None:
    # Its requests leave no garbage: freezing gained nothing and cost 1-2% (engine/heap.py).
    proc = serve_process(*APPS["wsgi"], "--port", "0")
    assert int(get(proc.address(), "/frozen").body) == _frozen_at_start()
    told = serve_process(*APPS["wsgi"], "--port", "0", "--no-gc-freeze")
    told.address()
    assert "--gc-freeze False: mean(s) nothing to a WSGI application" in told.stderr


def test_each_worker_freezes_its_own_heap(serve_process: Spawn) -> None:
    proc = serve_process(*APPS["asgi-asyncio"], "--port", "0", "--workers", "2")
    where = proc.address()
    ready_workers(proc, 2)
    baseline = _frozen_at_start()
    assert all(int(get(where, "/frozen").body) > baseline + 5_000 for _ in range(20))
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def _deferred(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)


@linux
@pytest.mark.parametrize(("loop", "deferred"), [("asyncio", True), ("uvloop", False)])
def test_uvloop_listeners_accept_at_the_handshake(loop: str, deferred: bool) -> None:
    server = AsyncServer(asgi_app, ServerConfig(bind=("127.0.0.1:0",), loop=loop))
    try:
        assert bool(_deferred(server.sockets[0])) is deferred
    finally:
        server.loop.close()
        for sock in server.sockets:
            sock.close()


@linux
def test_a_burst_of_connections_on_uvloop_is_answered(serve_process: Spawn) -> None:
    # What the option changes, seen from clients: 100 connections opened at once, each
    # sending its request at once, all answered (no timing asserted: bench/ measures it).
    proc = serve_process(*APPS["asgi-uvloop"], "--port", "0")
    host, _, port = proc.address().rpartition(":")
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(100)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = []
        for sock in socks:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            answers.append(data)
    finally:
        for sock in socks:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"Hello, World") for a in answers)
