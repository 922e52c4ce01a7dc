"""HEAD on a streamed response (no length from the application) never says a length the GET
would not have (issue 8 item 2): frameworks answer HEAD with an empty body, which says
nothing about GET's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.app import App
from tests.conftest import StartServer, addr
from tests.wire import Reader, Response, connect, exchange

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def head_then_get(where: str, path: str) -> tuple[Response, Response]:
    """HEAD then GET on one connection: the HEAD must frame nothing, or the GET misparses."""
    with_head = f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    get = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    head = exchange(where, with_head, head_request=True)[0]
    return head, exchange(where, get)[0]


def assert_no_false_length(head: Response, get: Response) -> None:
    assert head.status == get.status == 200
    assert get.header("transfer-encoding") == "chunked" and get.body
    assert head.header("content-length") is None
    assert head.header("transfer-encoding") is None


def test_flask_generator_view(start_server: StartServer) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("head_streamed")

    @app.get("/stream")
    def stream() -> Any:
        return flask.Response((f"line {n}\n" for n in range(5)), mimetype="text/plain")

    head, get = head_then_get(addr(start_server(app)), "/stream")
    assert_no_false_length(head, get)
    assert get.body == b"".join(b"line %d\n" % n for n in range(5))


def test_kakehashi_app_generator_view(start_server: StartServer) -> None:
    app = App()

    @app.get("/stream")
    def stream(request: Any) -> Iterator[str]:
        return (f"chunk {n}\n" for n in range(3))

    head, get = head_then_get(addr(start_server(app)), "/stream")
    assert_no_false_length(head, get)
    assert get.body == b"chunk 0\nchunk 1\nchunk 2\n"


def test_a_raw_generator_app_and_a_pipelined_request_after_head(
    start_server: StartServer,
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"streamed"

    where = addr(start_server(app))
    head, get = head_then_get(where, "/")
    assert_no_false_length(head, get)
    with connect(where) as sock:
        sock.sendall(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.read_response(head_request=True).header("content-length") is None
        assert reader.read_response().body == b"streamed"  # nothing stray between them
        assert reader.read_to_eof() == b""


def test_a_known_body_still_gives_head_its_length(start_server: StartServer) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"five!"]  # the same body for HEAD as for GET: its length is GET's

    head = exchange(
        addr(start_server(app)), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", head_request=True
    )[0]
    assert head.header("content-length") == "5"
