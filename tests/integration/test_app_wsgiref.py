"""The framework under another WSGI server: the standard library's wsgiref, over loopback.

wsgiref decodes the target itself, so this checks the PEP 3333 path handling end to end.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from kakehashi.demo import app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def port() -> Iterator[int]:
    with make_server("127.0.0.1", 0, app, handler_class=QuietHandler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            thread.join(timeout=10)


def fetch(port: int, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_demo_over_wsgiref(port: int) -> None:
    assert fetch(port, "GET", "/")[2] == b"Hello, World"
    status, headers, body = fetch(port, "GET", "/greeting/%E5%A4%AA%E9%83%8E")
    assert (status, body.decode()) == (200, "Hello, 太郎!")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert fetch(port, "GET", "/greeting/Taro/anything")[0] == 404
    assert fetch(port, "GET", "/greeting/%FF")[0] == 400
    status, headers, body = fetch(port, "HEAD", "/")
    assert (status, headers["Content-Length"], body) == (200, "12", b"")
    status, headers, _ = fetch(port, "DELETE", "/")
    assert (status, headers["Allow"]) == (405, "GET, HEAD, OPTIONS")
