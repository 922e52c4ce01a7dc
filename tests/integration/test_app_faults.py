"""Application faults never cost the server a thread: BaseExceptions from an application are
failed requests, a worker thread that dies anyway is replaced, and a stuck request is
reported with its stack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kakehashi.server import Server, ServerConfig
from kakehashi.server.threads.epoll_poller import EpollPoller
from kakehashi.server.threads.portable_poller import PortablePoller
from tests import server_apps
from tests.conftest import TEST_POLLER, StartServer, addr, kakehashi_threads
from tests.wire import Reader, connect, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Environ = dict[str, Any]


def _raising_app(environ: Environ, start_response: Callable[..., Any]) -> Any:
    """/exit, /interrupt, /generator-exit raise at once; /late-exit after the head went
    out; /close-exit from the iterable's close(); anything else says hello."""
    path = environ["PATH_INFO"]
    if path == "/exit":
        raise SystemExit(3)
    if path == "/interrupt":
        raise KeyboardInterrupt
    if path == "/generator-exit":
        raise GeneratorExit
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/late-exit":
        return _late_exit()
    if path == "/close-exit":
        return _CloseExits()
    return [b"Hello, World"]


def _late_exit() -> Iterator[bytes]:
    yield b"part of it"
    raise SystemExit(4)


class _CloseExits:
    def __iter__(self) -> Iterator[bytes]:
        yield b"all of it"

    def close(self) -> None:
        raise SystemExit(5)


def _alive_workers(server: Server) -> int:
    return sum(t.is_alive() for t in server._workers)


@pytest.mark.parametrize("path", ["/exit", "/interrupt", "/generator-exit", "/close-exit"])
def test_base_exceptions_from_the_app_are_a_500(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    server = start_server(_raising_app)
    for _ in range(10):  # more than the 4 threads
        resp = get(addr(server), path)
        if path == "/close-exit":  # the body went out with its length; close() failed after
            assert (resp.status, resp.body) == (200, b"all of it")
        else:
            assert resp.status == 500
            assert resp.header("connection") == "close"
    assert get(addr(server)).status == 200
    assert _alive_workers(server) == 4
    assert "error in application" in caplog.text
    assert "Traceback" in caplog.text


def test_a_base_exception_after_the_head_aborts_the_response(start_server: StartServer) -> None:
    server = start_server(_raising_app)
    for _ in range(6):
        with connect(addr(server)) as sock:
            sock.sendall(b"GET /late-exit HTTP/1.1\r\nHost: x\r\n\r\n")
            data = Reader(sock).read_to_eof()
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert not data.endswith(b"0\r\n\r\n")  # cut short: never a complete, wrong response
    assert get(addr(server)).status == 200
    assert _alive_workers(server) == 4


class _Dying:
    """Wraps what worker threads wait in (the epoll, or the portable poller's selector) so
    that the first wait of one thread raises."""

    def __init__(self, wrapped: Any, method: str) -> None:
        self._wrapped = wrapped
        self._method = method
        self._lock = threading.Lock()
        self.killed = False

    def _wait(self, *args: Any) -> Any:
        with self._lock:
            kill, self.killed = not self.killed, True
        if kill:
            raise RuntimeError("a worker thread dies")
        return getattr(self._wrapped, self._method)(*args)

    def __getattr__(self, name: str) -> Any:
        return self._wait if name == self._method else getattr(self._wrapped, name)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_thread_that_dies_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(bind=("127.0.0.1:0",), threads=2, poller=TEST_POLLER)
    server = Server(server_apps.app, config)
    poller = server._poller
    dying: _Dying
    if isinstance(poller, EpollPoller):
        dying = poller.epoll = _Dying(poller.epoll, "poll")  # type: ignore[assignment]
    else:
        assert isinstance(poller, PortablePoller)
        dying = poller.selector = _Dying(poller.selector, "select")  # type: ignore[assignment]
    server.start()
    try:
        assert wait_until(lambda: "died; starting another" in caplog.text, 5)
        assert wait_until(lambda: _alive_workers(server) == 2, 2)
        for _ in range(5):
            assert get(addr(server)).status == 200
    finally:
        server.shutdown(timeout=2)
    assert dying.killed
    assert not kakehashi_threads()


def test_a_stuck_request_is_reported_once_with_its_stack(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kakehashi")
    server = start_server(server_apps.app, request_timeout=0.3)
    started = time.monotonic()
    resp = get(addr(server), "/slow?1.2")
    assert resp.status == 200  # reported, not killed
    reports = [r.getMessage() for r in caplog.records if "still running after" in r.getMessage()]
    assert len(reports) == 1, reports
    assert "GET /slow?1.2 from 127.0.0.1" in reports[0]
    assert "in _slow" in reports[0]  # the application function in the thread's stack
    assert "time.sleep" in reports[0]
    assert time.monotonic() - started < 5
