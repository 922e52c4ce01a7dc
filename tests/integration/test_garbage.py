"""A request leaves nothing for the garbage collector: every object it made is freed by
reference counting when it ends.  A reference cycle per request (the response writer and
start_response's ``write``, a 404's traceback) had the collector run every ~90 requests on
the request path, and kept each request's objects alive until it did."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.demo import app as demo_app
from tests.conftest import StartServer, addr, asgi_hello, hello_app

pytestmark = pytest.mark.integration

REQUESTS = 200


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The collector disabled (so what a request leaves in cycles stays to be counted)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one keep-alive request and read its whole response (head and Content-Length body)
    with plain socket calls, which leave no cycles of their own."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _garbage_after(host_port: str, requests: list[bytes]) -> int:
    """Objects found unreachable (in cycles) after sending ``requests`` REQUESTS times."""
    host, port = host_port.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for request in requests:  # warm up: caches fill, lazy imports happen
            _exchange(sock, request)
        gc.collect()
        for _ in range(REQUESTS):
            for request in requests:
                status = _exchange(sock, request).split(b" ", 2)[1]
                assert status in (b"200", b"404", b"405")
    return gc.collect()


@pytest.mark.usefixtures("collector_off")
def test_plain_requests_leave_no_cycles(start_engine: Any) -> None:
    server = start_engine(hello_app, asgi_hello, access_log=True)
    get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    post = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    found = _garbage_after(addr(server), [get, post, chunked])
    # A few objects of the server's background work may be among them; one per request or
    # more is a cycle on the request path.
    assert found < REQUESTS // 4, f"{found} objects left in cycles by {REQUESTS * 3} requests"


@pytest.mark.usefixtures("collector_off")
def test_framework_errors_leave_no_cycles(start_server: StartServer) -> None:
    server = start_server(demo_app)
    requests = [
        b"GET /greeting/taro HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /no/such/page HTTP/1.1\r\nHost: t\r\n\r\n",  # 404, raised inside the router
        b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n",  # 405
    ]
    found = _garbage_after(addr(server), requests)
    assert found < REQUESTS // 4, f"{found} objects left in cycles by {REQUESTS * 3} requests"
