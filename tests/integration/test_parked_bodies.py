"""Bodies read while the connection is parked: memory follows what clients sent, not what
they announced; one budget bounds them all; a trickled body is held to a minimum rate; a
chunked body past --buffer-body-size is spooled to a file and still arrives whole."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import server_apps
from tests.conftest import ServeProcess, StartServer, addr
from tests.wire import Reader, connect, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _digest_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    out = json.dumps(
        {
            "size": len(body),
            "sha": hashlib.sha256(body).hexdigest(),
            "content_length": environ.get("CONTENT_LENGTH"),
            "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


def _trickle(sock: socket.socket) -> tuple[bytes, float]:
    """Send 10 body bytes every 0.1 s (never idle, but 100 B/s) until the server answers;
    returns the answer and how long it took (bounded: 60 rounds)."""
    started = time.monotonic()
    sock.settimeout(0.05)
    answer = b""
    for _ in range(60):
        try:
            sock.sendall(b"0123456789")
            answer += sock.recv(4096)
        except TimeoutError:
            pass
        except OSError:
            break
        if answer:
            break
        time.sleep(0.05)
    return answer, time.monotonic() - started


# ``/echo`` reads the whole body on each engine: the thread engine's WSGI app, and the asyncio
# engine's ASGI twin on each loop.
_ECHO_SERVERS = {
    "threads": ("tests.server_apps:app",),
    "asyncio": ("tests.asgi_apps:app", "--loop", "asyncio"),
    "uvloop": ("tests.asgi_apps:app", "--loop", "uvloop"),
}


@pytest.mark.parametrize("engine", list(_ECHO_SERVERS))
def test_announced_bodies_cost_only_what_arrived(
    serve_process: Callable[..., ServeProcess], engine: str
) -> None:
    """1,000 heads announcing 1 MiB bodies, one body byte each: well under 64 MiB more RSS,
    on every engine (the application reads the body, so the engine holds 1,000 of them)."""
    proc = serve_process(*_ECHO_SERVERS[engine], "--port", "0", "--no-access-log")
    where = proc.address()
    host, port = where.rsplit(":", 1)
    pid = proc.proc.pid
    before = _rss_kib(pid)
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nx"
    socks: list[socket.socket] = []
    try:
        for _ in range(1000):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(head)
            socks.append(sock)
        peak = before
        for _ in range(12):  # 3 s: every connection accepted and its byte read
            time.sleep(0.25)
            peak = max(peak, _rss_kib(pid))
        # the server holds all 1,000 (not the kernel's backlog): the bar measures the engine
        assert len(os.listdir(f"/proc/{pid}/fd")) >= 1000
        grown_mib = (peak - before) / 1024
        assert grown_mib < 64, f"RSS grew by {grown_mib:.0f} MiB"
        # and the server still answers at once
        with connect(where) as fresh:
            fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(fresh).read_response().status == 200
    finally:
        for sock in socks:
            sock.close()


def test_over_the_budget_a_body_streams_and_arrives_whole(start_server: StartServer) -> None:
    server = start_server(_digest_app, parked_body_budget=16384)
    data = bytes(range(256)) * 800  # 204,800 bytes, more than the budget
    with connect(addr(server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data))
        for i in range(0, len(data), 8192):  # in pieces, so part of it is read while parked
            sock.sendall(data[i : i + 8192])
            time.sleep(0.005)
        got = json.loads(Reader(sock).read_response().body)
    assert got["size"] == len(data)
    assert got["sha"] == hashlib.sha256(data).hexdigest()
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 2)


def test_budget_is_given_back_when_clients_give_up(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    socks = []
    for _ in range(20):
        sock = connect(addr(server))
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        socks.append(sock)
    assert wait_until(lambda: server.ctx.body_budget.used > 0, 3)
    for sock in socks:
        sock.close()
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 3)


def test_a_trickled_body_below_the_minimum_rate_gets_408(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")
    server = start_server(server_apps.app, body_timeout=0.5, body_min_rate=1000)
    with connect(addr(server)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        answer, elapsed = _trickle(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"body too slow" in answer
    assert elapsed < 3  # the inactivity timeout alone would never have fired
    assert "body slower than 1000 B/s" in caplog.text


def test_a_chunked_body_then_a_pipelined_request(start_server: StartServer) -> None:
    server = start_server(_digest_app)
    with connect(addr(server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        time.sleep(0.1)  # the rest arrives while the connection is parked
        sock.sendall(b"lo\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        first = json.loads(reader.read_response().body)
        second = reader.read_response()
    assert first == {
        "size": 5,
        "sha": hashlib.sha256(b"hello").hexdigest(),
        "content_length": "5",
        "transfer_encoding": None,
    }
    assert second.status == 200


def test_a_broken_chunked_body_read_while_parked_gets_400(start_server: StartServer) -> None:
    server = start_server(_digest_app)
    with connect(addr(server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe")
        time.sleep(0.1)
        sock.sendall(b"llo\r\nzz\r\n")
        reader = Reader(sock)
        assert reader.read_response().status == 400
        assert reader.closed()
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 2)


def test_a_trickled_streamed_body_below_the_minimum_rate_gets_408(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A body too large to park is streamed to the application on a worker thread: it is
    held to the same minimum rate, so trickling it cannot keep that thread for long."""
    caplog.set_level(logging.INFO, logger="kakehashi")
    server = start_server(_digest_app, body_timeout=0.5, body_min_rate=1000)
    length = 2 * 1024 * 1024  # over --buffer-body-size: streamed
    with connect(addr(server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length)
        answer, elapsed = _trickle(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"body slower than 1000 B/s" in answer
    assert elapsed < 3


# -- chunked bodies are read whole while parked: past --buffer-body-size, into a file --------


def _chunked(data: bytes, piece: int = 65536) -> bytes:
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"


def _expect_digest(got: dict[str, Any], data: bytes) -> None:
    assert got == {
        "size": len(data),
        "sha": hashlib.sha256(data).hexdigest(),
        "content_length": str(len(data)),
        "transfer_encoding": None,
    }


def test_a_spooled_chunked_body_then_a_pipelined_request(start_server: StartServer) -> None:
    server = start_server(_digest_app, buffer_body_size=65536)
    data = bytes(range(251)) * 8000  # 2,008,000 bytes: spooled
    with connect(addr(server)) as sock:
        sock.sendall(
            _CHUNKED_HEAD + b"\r\n" + _chunked(data) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        reader = Reader(sock)
        _expect_digest(json.loads(reader.read_response().body), data)
        assert json.loads(reader.read_response().body)["size"] == 0
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 2)


def test_a_chunked_body_past_max_body_size_gets_413(start_server: StartServer) -> None:
    server = start_server(_digest_app, max_body_size=1 << 20)
    data = b"q" * (1 << 20)  # exactly the limit: accepted
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"\r\n" + _chunked(data))
        _expect_digest(json.loads(Reader(sock).read_response().body), data)
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"\r\n" + _chunked(data).removesuffix(b"0\r\n\r\n"))
        sock.sendall(b"1\r\nq\r\n")  # one byte more
        reader = Reader(sock)
        answer = reader.read_response()
        assert answer.status == 413
        assert b"exceeds the limit of 1048576 bytes" in answer.body
        assert reader.closed()
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 2)


def test_the_budget_bounds_a_chunked_body_in_memory(start_server: StartServer) -> None:
    """Over --parked-body-budget a chunked body goes to a file early, and still arrives
    whole with its length; memory never held more than the budget."""
    server = start_server(_digest_app, parked_body_budget=16384)
    data = bytes(range(256)) * 800  # 204,800 bytes, more than the budget
    wire = _chunked(data, 4096)
    budget = server.ctx.body_budget
    peak = 0
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"\r\n")
        for i in range(0, len(wire), 8192):  # in pieces, read while parked
            sock.sendall(wire[i : i + 8192])
            time.sleep(0.002)
            peak = max(peak, budget.used)
        _expect_digest(json.loads(Reader(sock).read_response().body), data)
    assert 0 < peak <= 16384
    assert wait_until(lambda: budget.used == 0, 2)


def test_a_chunked_100_continue_body_is_asked_for_at_once(start_server: StartServer) -> None:
    """The application cannot ask for a chunked body (it is read whole before it runs):
    ``100 Continue`` goes out with the head read, and the body arrives whole."""
    server = start_server(_digest_app)
    data = b"c" * 3_000_000
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"Expect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response().status == 100  # before any of the body was sent
        sock.sendall(_chunked(data))
        _expect_digest(json.loads(reader.read_response().body), data)


def test_a_trickled_chunked_body_below_the_minimum_rate_gets_408(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")
    server = start_server(_digest_app, body_timeout=0.5, body_min_rate=1000)
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"\r\n400000\r\n")  # one 4 MiB chunk, trickled
        answer, elapsed = _trickle(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert elapsed < 3
    assert "body slower than 1000 B/s" in caplog.text


def test_a_body_that_cannot_be_spooled_gets_500(
    start_server: StartServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    server = start_server(_digest_app, buffer_body_size=1024)
    with connect(addr(server)) as sock:
        sock.sendall(_CHUNKED_HEAD + b"\r\n" + _chunked(b"s" * 5000, 1000))
        reader = Reader(sock)
        answer = reader.read_response()
        assert answer.status == 500
        assert b"the body could not be stored" in answer.body
        assert reader.closed()
    assert "cannot store a request body from 127.0.0.1" in caplog.text
    assert wait_until(lambda: server.ctx.body_budget.used == 0, 2)
