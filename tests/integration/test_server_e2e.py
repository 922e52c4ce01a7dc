"""The server over real loopback sockets: keep-alive, pipelining, HEAD, 100-continue, response
framing, protocol errors, timeouts by phase, and slow readers."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import asgi_apps, server_apps
from tests.conftest import StartServer, addr
from tests.wire import Reader, connect, exchange, get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def _path_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = (environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"]).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


async def _path_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await asgi_apps.text(send, (scope["method"] + " " + scope["path"]).encode())


def _stream_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one,"
    yield b""
    yield b"two"


# -- keep-alive, pipelining, HEAD ------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(start_engine: Any) -> None:
    server = start_engine(_path_app, _path_asgi)
    with connect(addr(server)) as sock:
        reader = Reader(sock)
        for n in range(5):
            sock.sendall(b"GET /n%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
            resp = reader.read_response()
            assert (resp.status, resp.body) == (200, b"GET /n%d" % n)
            assert resp.header("connection") is None
            assert resp.header("content-length") == str(len(resp.body))


def test_pipelined_requests_in_one_send_are_answered_in_order(start_engine: Any) -> None:
    server = start_engine(_path_app, _path_asgi)
    data = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(10))
    data += b"POST /p10 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    data += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    responses = exchange(addr(server), data, count=12)
    assert [r.body for r in responses] == [b"GET /p%d" % n for n in range(10)] + [
        b"POST /p10",
        b"GET /last",
    ]
    assert responses[-1].header("connection") == "close"


def test_pipelined_requests_split_anywhere(start_engine: Any) -> None:
    server = start_engine(server_apps.app, asgi_apps.app)
    data = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with connect(addr(server)) as sock:
        for i in range(0, len(data), 7):
            sock.sendall(data[i : i + 7])
            time.sleep(0.002)
        reader = Reader(sock)
        bodies = [reader.read_response().body for _ in range(3)]
    assert bodies == [b"abc", b"hello", b"Hello, World"]


def test_head_has_get_content_length_and_no_body(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    with connect(addr(server)) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        head = reader.read_response(head_request=True)
        after = reader.read_response()
    assert head.status == 200
    assert head.header("content-length") == "12"
    assert after.body == b"Hello, World"  # so the HEAD response carried no body bytes


# -- Expect: 100-continue ----------------------------------------------------------------------


def test_100_continue_is_sent_only_when_the_app_reads(start_server: StartServer) -> None:
    entered, go = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        go.wait(5)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"got " + body]

    server = start_server(app)
    with connect(addr(server)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert entered.wait(5)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # nothing before the application reads
        sock.settimeout(5)
        go.set()
        reader = Reader(sock)
        interim = reader.read_response()
        assert interim.status == 100
        sock.sendall(b"hello")
        final = reader.read_response()
        assert (final.status, final.body) == (200, b"got hello")
        # and the connection goes on
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read_response().status == 200


def test_100_continue_not_sent_when_the_app_does_not_read(start_server: StartServer) -> None:
    server = start_server(server_apps.hello)
    with connect(addr(server)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 200  # the final response, no 100 before it
        assert resp.body == b"Hello, World"
        # The body was never asked for, so the server cannot reuse the connection: it must
        # say so, and close.
        assert resp.header("connection") == "close"
        assert reader.closed()
    assert get(addr(server)).status == 200


# -- response framing --------------------------------------------------------------------------


def test_chunked_response_when_the_app_gives_no_length(start_server: StartServer) -> None:
    server = start_server(_stream_app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.header("transfer-encoding") == "chunked"
        assert resp.body == b"one,two"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read_response().body == b"one,two"  # still kept alive


def test_http10_response_without_length_is_close_delimited(start_server: StartServer) -> None:
    server = start_server(_stream_app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        resp = reader.read_response()
    assert resp.header("transfer-encoding") is None
    assert resp.header("content-length") is None
    assert resp.header("connection") == "close"
    assert resp.body == b"one,two"


def test_http10_keep_alive(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    with connect(addr(server)) as sock:
        reader = Reader(sock)
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = reader.read_response()
            assert resp.header("connection") == "keep-alive"
            assert resp.body == b"Hello, World"
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        resp = reader.read_response()
        assert resp.header("connection") == "close"
        assert reader.closed()


def test_client_connection_close_is_honoured(start_server: StartServer) -> None:
    server = start_server()
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response().header("connection") == "close"
        assert reader.closed()


def test_app_connection_close_is_honoured(start_server: StartServer) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"bye"]

    server = start_server(app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        resp = reader.read_response()
        assert (resp.body, resp.header("connection")) == (b"bye", "close")
        assert reader.closed()


# -- protocol errors -----------------------------------------------------------------------------

LONG_TARGET = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
HUGE_HEADERS = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n"
MANY_HEADERS = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 500 + b"\r\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"this is not a http request.\r\nthis is not a header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (LONG_TARGET, 414),
        (HUGE_HEADERS, 431),
        (MANY_HEADERS, 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ],
    ids=["garbage", "no-host", "cl+te", "414", "431-size", "431-count", "413", "501", "h2"],
)
def test_protocol_errors_get_their_status_then_the_server_goes_on(
    start_engine: Any, caplog: pytest.LogCaptureFixture, raw: bytes, status: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="kakehashi")
    entered = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.append(environ["PATH_INFO"])
        return server_apps.hello(environ, start_response)

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            entered.append(scope["path"])
            await asgi_apps.app(scope, receive, send)

    server = start_engine(app, asgi, max_body_size=1000, limit_request_fields=100)
    caplog.clear()  # what starting said (an ASGI app without lifespan)
    with connect(addr(server)) as sock:
        sock.sendall(raw)  # for 413 the body is never sent: refused on the head alone
        reader = Reader(sock)
        resp = reader.read_response()
        assert reader.closed()
    assert resp.status == status
    assert resp.header("connection") == "close"
    assert (
        resp.header(
            "content-type",
        )
        == "text/plain; charset=utf-8"
    )
    assert resp.body.startswith(b"%d " % status) and len(resp.body) < 1200
    assert entered == []  # the application never saw it
    errors = [r for r in caplog.records if r.name == "kakehashi.error"]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert str(status) in errors[0].getMessage()
    assert errors[0].exc_info is None and errors[0].levelno <= logging.INFO
    assert get(addr(server)).status == 200


def test_bad_chunked_body_read_by_the_app_gets_one_400(
    start_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kakehashi")
    server = start_engine(server_apps.app, asgi_apps.app)
    raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n"
    with connect(addr(server)) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 400
        assert reader.read_to_eof() == b""  # one response, not a 500 and then a 400
    assert get(addr(server)).status == 200


def test_client_disconnects_are_not_logged_as_errors(
    start_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kakehashi")
    server = start_engine(server_apps.app, asgi_apps.app)
    # gone mid-head, mid-body, mid-streamed-body, and while the response is streaming
    for raw in (
        b"GET / HTT",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        with connect(addr(server)) as sock:
            sock.sendall(raw)
            time.sleep(0.15)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    time.sleep(0.3)
    assert get(addr(server)).status == 200
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert bad == [], [r.getMessage() for r in bad]


# -- timeouts, by phase --------------------------------------------------------------------------


def test_timeouts_by_phase(start_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kakehashi")
    server = start_engine(
        server_apps.app, asgi_apps.app, header_timeout=0.6, keep_alive=0.6, body_timeout=0.6,
        threads=2,
    )  # fmt: skip
    where = addr(server)
    started = time.monotonic()
    silent = connect(where)
    partial_head = connect(where)
    partial_head.sendall(b"GET / HTTP/1.1\r\nHost:")
    small_body = connect(where)  # pre-buffered while parked
    small_body.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    streamed = connect(where)  # a small chunked body is parked too
    streamed.sendall(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    idle = connect(where)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    expecting = connect(where)  # streamed to the app, which asks for the body that never comes
    expecting.sendall(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    socks = [silent, partial_head, small_body, streamed, idle, expecting]
    try:
        readers = [Reader(s) for s in socks]
        assert readers[4].read_response().status == 200
        # while all that waits, the server answers others at once
        assert get(where, timeout=1).status == 200
        assert readers[0].closed() and readers[0].buf == b""
        assert readers[1].read_response().status == 408
        assert readers[2].read_response().status == 408
        assert readers[3].read_response().status == 408
        assert readers[4].closed()
        assert readers[5].read_response().status == 100
        assert readers[5].read_response().status == 408  # the app read; the body never came
        assert readers[5].closed()
        assert time.monotonic() - started < 5
    finally:
        for sock in socks:
            sock.close()
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "silent connection timeout" in messages
    assert "head timeout" in messages
    assert "body timeout" in messages
    assert "408 for 127.0.0.1: body timeout (0.6s without a byte)" in messages  # streamed
    assert "keep-alive timeout" in messages
    assert get(where).status == 200


def test_slow_reader_is_bounded_and_dropped(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kakehashi")
    produced = []
    closed = threading.Event()

    class Big:
        def __iter__(self) -> Iterator[bytes]:
            block = b"x" * 65536
            for n in range(1024):  # 64 MiB if it were all pulled
                produced.append(n)
                yield block

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Big:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Big()

    server = start_server(
        app, send_timeout=0.5, threads=2, output_buffer_memory=1 << 18, output_buffer_limit=1 << 20
    )
    with connect(addr(server)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed.wait(5)  # the reader was dropped and the app's iterable was closed
        # bounded: the app was paused past --output-buffer-limit, far short of 64 MiB (the
        # rest is the kernel's send buffer, up to 4 MiB)
        assert len(produced) < 200
        # meanwhile, others are served
        assert get(addr(server)).status == 200
    assert "slow reader 127.0.0.1 dropped in phase response (no progress for 0.5 s)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
