"""Slow readers hold no thread (issue 9 item 1): the rest of a response waits in the
connection's OutputBuffer while the worker threads serve others; readers that stop or trickle
are dropped by the progress and rate rules; real frameworks' streaming still works.

Slow readers are real sockets with a small SO_RCVBUF that read at a set pace (or not at all).
Where a short response must outgrow the kernel's buffers, the listener's SO_SNDBUF is set
small too (accepted sockets inherit it): on loopback the kernel would otherwise take 4 MiB.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.server import Server
from kakehashi.server.threads.channel import HTTPChannel
from kakehashi.server.threads.outbuf import OutputBuffer
from kakehashi.server.threads.poller import Phase
from tests.conftest import ROOT, SRC, StartServer, addr, hello_app
from tests.wire import Reader, get, parse_response, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MiB = 1 << 20


# -- helpers -------------------------------------------------------------------------------------


def slow_client(address: str, rcvbuf: int = 4096) -> socket.socket:
    """A connected socket whose receive buffer is small (set before connecting)."""
    host, _, port = address.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def small_send_buffers(server: Server, size: int = 4096) -> None:
    """Accepted sockets inherit the listener's (locked) SO_SNDBUF."""
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def read_paced(sock: socket.socket, rate: float, limit: float = 20.0) -> bytes:
    """Everything until EOF, at about ``rate`` bytes a second, within ``limit`` seconds."""
    got = bytearray()
    started = time.monotonic()
    size = 1024 if rate < 1e6 else 65536
    while time.monotonic() - started < limit:
        data = sock.recv(size)
        if not data:
            return bytes(got)
        got += data
        ahead = len(got) / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    raise AssertionError(f"not done within {limit} s ({len(got)} bytes)")


def channels_of(server: Server) -> list[HTTPChannel]:
    return list(server._poller.channels.values())


def waiting_output(server: Server) -> OutputBuffer | None:
    for channel in channels_of(server):
        if channel.out is not None:
            return channel.out
    return None


def streamed(total: int, block: int = 65536, done: list[int] | None = None) -> Any:
    """A WSGI app streaming ``total`` bytes (no length), block ``n`` filled with ``n % 251``."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if environ["PATH_INFO"] != "/stream":
            yield from hello_app(environ, start_response)
            return
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        for n in range(total // block):
            yield bytes([n % 251]) * block
        if done is not None:
            done.append(threading.get_ident())

    return app


def expected_stream(total: int, block: int = 65536) -> bytes:
    return b"".join(bytes([n % 251]) * block for n in range(total // block))


# -- no thread is held -----------------------------------------------------------------------


def test_eight_slow_readers_hold_no_thread(start_server: StartServer) -> None:
    done: list[int] = []
    total = 20 * 1000 * 1000 // 65536 * 65536  # about 20 MB
    server = start_server(streamed(total, done=done))  # the default 4 threads
    where = addr(server)
    readers = [slow_client(where) for _ in range(8)]
    try:
        for sock in readers:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024)  # the response has started
        # every application ran to its end and let its thread go
        assert wait_until(lambda: len(done) == 8, 20)
        slowest = 0.0
        for _ in range(50):
            started = time.monotonic()
            assert get(where, timeout=5).status == 200
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0, slowest
        waiting = [c.out for c in channels_of(server) if c.phase is Phase.WRITE]
        assert len(waiting) == 8  # still held open, parked, waiting for their readers
        for out in waiting:  # most of each response waits, spooled beyond 1 MiB
            assert out is not None and out.total > 10 * MiB and out.memory <= MiB
    finally:
        for sock in readers:
            sock.close()


def test_pipelined_requests_wait_behind_a_queued_response(start_server: StartServer) -> None:
    total = 2 * MiB
    server = start_server(streamed(total))
    small_send_buffers(server)
    sock = slow_client(addr(server))
    with sock:
        sock.sendall(
            b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        reader = Reader(sock)
        first = reader.read_response()
        assert first.status == 200 and first.body == expected_stream(total)
        assert [reader.read_response().body for _ in range(2)] == [b"Hello, World"] * 2
        # the connection is kept alive after the parked write
        sock.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read_response().body == b"Hello, World"
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reader.read_response().body == expected_stream(total)
        assert reader.closed()


# -- readers that stop or trickle are dropped --------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "timeout", "window", "rule"),
    [
        (0, 1.0, 10.0, "no progress for 1 s"),
        (1, 10.0, 1.0, "below 50000 B/s over 1 s"),
        (5000, 10.0, 1.0, "below 50000 B/s over 1 s"),
    ],
    ids=["stopped", "1 B/s", "5 KB/s"],
)
def test_slow_reader_is_dropped_by_its_rule(
    start_server: StartServer,
    caplog: pytest.LogCaptureFixture,
    rate: int,
    timeout: float,
    window: float,
    rule: str,
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.error")
    server = start_server(
        streamed(8 * MiB), send_timeout=timeout, send_min_rate=50000, send_rate_window=window
    )
    small_send_buffers(server)
    sock = slow_client(addr(server), rcvbuf=2048)
    started = time.monotonic()
    with sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        taken = 0
        while time.monotonic() - started < 6 and server._poller.channels:
            if rate:
                step = min(100, rate)
                taken += len(sock.recv(step))
                time.sleep(step / rate)
            else:
                time.sleep(0.05)
        assert not server._poller.channels, "the slow reader was not dropped"
        assert bool(taken) == bool(rate)  # the trickler made progress, but too little
    assert time.monotonic() - started < 6
    lines = [r.getMessage() for r in caplog.records if "slow reader" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"slow reader 127.0.0.1 dropped in phase write ({rule}): ")
    assert " bytes sent, " in lines[0]
    assert [r.levelname for r in caplog.records if "slow reader" in r.getMessage()] == ["INFO"]
    assert get(addr(server)).status == 200


# -- memory: bounded in memory, spooled beyond, the application paused past the limit ----------


def test_output_is_spooled_past_memory_and_the_app_paused_past_the_limit(
    start_server: StartServer,
) -> None:
    produced: list[int] = []
    block, blocks = 8192, 2048  # 16 MiB in small pieces (they are gathered before spooling)

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        for n in range(blocks):
            produced.append(n)
            yield bytes([n % 251]) * block

    memory, limit = 256 * 1024, 4 * MiB
    server = start_server(app, output_buffer_memory=memory, output_buffer_limit=limit)
    small_send_buffers(server)
    with slow_client(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert wait_until(lambda: waiting_output(server) is not None)
        out = waiting_output(server)
        assert out is not None
        assert wait_until(lambda: out.total > limit, 10)  # the reader takes nothing
        # past the limit the application stops producing: it waits for the client
        paused_at = len(produced)
        time.sleep(0.5)
        assert len(produced) == paused_at < blocks
        assert not out.complete and out is waiting_output(server)
        assert limit < out.total <= limit + block
        assert 0 < out.memory <= out.peak_memory <= memory  # the rest is in the spool
        assert out.peak_total <= limit + block
        body = parse_response(read_paced(sock, 1e9)).body
    assert body == b"".join(bytes([n % 251]) * block for n in range(blocks))
    assert out.peak_memory <= memory and out.peak_total <= limit + block


def test_a_list_body_is_queued_without_a_copy(start_server: StartServer) -> None:
    body = os.urandom(32 * MiB)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]

    server = start_server(app, output_buffer_limit=4 * MiB)  # a held body is not paused for
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with slow_client(addr(server)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
            out = waiting_output(server)
            assert out is not None and out.held == out.total > 16 * MiB
            assert all(memoryview(piece).obj is body for piece in out._items if len(piece) > 64)
            peak = tracemalloc.get_traced_memory()[1] - base
            received = parse_response(read_paced(sock, 1e9)).body
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak  # joining the body, or copying what is left, costs 16-32 MiB
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()


# -- file_wrapper: sendfile from the queue, the file closed after its last byte -----------------


def test_file_wrapper_to_a_slow_reader(
    start_server: StartServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = os.urandom(3 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    real_sendfile = os.sendfile
    by_sendfile = []

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent = real_sendfile(out_fd, in_fd, offset, count)
        by_sendfile.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", spy)
    app_done, closed_with = threading.Event(), []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        f = open(path, "rb")  # noqa: SIM115 - closed by the wrapper's close()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapper = environ["wsgi.file_wrapper"](f, 8192)
        real_close = wrapper.close

        def close() -> None:  # what is still queued when the file is closed
            out = waiting_output(server)
            closed_with.append((app_done.is_set(), sum(by_sendfile), out and out._items))
            real_close()

        wrapper.close = close  # type: ignore[method-assign]
        return wrapper

    def settled() -> bool:  # the application's thread queued the response to its end
        out = waiting_output(server)
        if out is not None and out.complete:
            app_done.set()
        return app_done.is_set()

    server = start_server(app, output_buffer_limit=MiB)  # a file region is not paused for
    small_send_buffers(server)
    with slow_client(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert wait_until(settled, 5)
        assert not closed_with  # released by the thread, the file still open
        received = parse_response(read_paced(sock, 4 * MiB)).body
    assert received == data
    assert sum(by_sendfile) == len(data)
    assert wait_until(lambda: len(closed_with) == 1)
    was_done, sent_at_close, queued_at_close = closed_with[0]
    assert was_done and sent_at_close == len(data) and not queued_at_close


# -- real frameworks: the iterator stays on its thread -------------------------------------------


def test_flask_stream_with_context_to_a_10kb_reader(start_server: StartServer) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("slow_readers")
    finished = []

    @app.get("/rows")
    def rows() -> Any:
        @flask.stream_with_context
        def gen() -> Iterator[str]:
            for n in range(int(flask.request.args["n"])):  # the request, read inside
                yield f"{n:04d} {flask.request.args['fill'] * 1000}\n"
            finished.append(flask.request.path)

        return flask.Response(gen(), mimetype="text/plain")

    server = start_server(app)
    small_send_buffers(server)
    with slow_client(addr(server), rcvbuf=2048) as sock:
        sock.sendall(b"GET /rows?n=40&fill=q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = sock.recv(1024)
        assert wait_until(lambda: finished == ["/rows"], 5)  # while most is still queued
        assert waiting_output(server) is not None
        raw = first + read_paced(sock, 10_000)
    resp = parse_response(raw)
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.body == "".join(f"{n:04d} {'q' * 1000}\n" for n in range(40)).encode()


def test_django_streaming_generator_querying_sqlite_to_a_10kb_reader(tmp_path: Path) -> None:
    pytest.importorskip("django")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.django_stream_server",
            str(tmp_path / "db"),
            "4096",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        with slow_client(line.split()[-1], rcvbuf=2048) as sock:
            sock.sendall(b"GET /rows HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            first = sock.recv(1024)
            # the generator ends while most of the response is still queued, on its thread
            assert proc.stdout.readline() == "generator done same_thread_and_connection=True\n"
            raw = first + read_paced(sock, 10_000)
        assert len(raw) - len(first) > 20_000  # most of it went out after the generator ended
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()  # by PID: the process this test started
                proc.wait(5)
            proc.stdout.close()
    resp = parse_response(raw)
    assert resp.status == 200
    assert resp.body == b"".join(b"%04d %s\n" % (n, bytes([97 + n % 26]) * 1000) for n in range(40))


# -- shutdown: a queued response is a request in flight ---------------------------------------


def test_shutdown_lets_a_queued_response_finish(start_server: StartServer) -> None:
    total = 2 * MiB
    server = start_server(streamed(total))
    small_send_buffers(server)
    with slow_client(addr(server)) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        stopper = threading.Thread(target=server.shutdown, args=(10,))
        stopper.start()
        time.sleep(0.3)  # shutdown has closed the listeners and the idle connections by now
        raw = read_paced(sock, 1e9)
        stopper.join(5)
        assert not stopper.is_alive()
    assert parse_response(raw).body == expected_stream(total)


def test_shutdown_cuts_a_reader_that_never_reads_at_the_grace_deadline(
    start_server: StartServer,
) -> None:
    server = start_server(streamed(2 * MiB))
    small_send_buffers(server)
    with slow_client(addr(server)) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        started = time.monotonic()
        server.shutdown(timeout=0.5)
        assert time.monotonic() - started < 2.5
        sock.settimeout(2)
        try:  # the client sees its response cut short, not a connection left hanging
            assert len(read_paced(sock, 1e9, limit=5)) < 2 * MiB
        except ConnectionResetError:
            pass
