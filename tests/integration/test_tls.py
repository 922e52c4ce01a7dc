"""HTTPS with real clients: curl and requests with a test CA (made by openssl at test time),
keep-alive and pipelining over one TLS connection, client certificates, 1,000 silent
connections that hold no thread, slow readers, file_wrapper, chunked uploads, shutdown,
and plain HTTP sent to the TLS port."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.server import Server
from kakehashi.server.threads.poller import Phase
from tests.conftest import StartServer, addr
from tests.integration.processes import cli
from tests.integration.test_slow_readers import (
    MiB,
    channels_of,
    expected_stream,
    read_paced,
    small_send_buffers,
    streamed,
    waiting_output,
)
from tests.integration.tls_certs import TLS_MARKS, Certs, module_certs
from tests.wire import Reader, connect, parse_response, wait_until

requests = pytest.importorskip("requests")

pytestmark = TLS_MARKS
certs = pytest.fixture(scope="module")(module_certs)


def tls(certs: Certs, **settings: Any) -> dict[str, Any]:
    """Server settings for HTTPS with the test certificate."""
    return {"certfile": str(certs.server_cert), "keyfile": str(certs.server_key), **settings}


def port(server: Server) -> int:
    return int(addr(server).rpartition(":")[2])


def url(server: Server, path: str = "/") -> str:
    return f"https://localhost:{port(server)}{path}"


def tls_client(
    server: Server,
    certs: Certs,
    *,
    rcvbuf: int = 0,
    cert: tuple[Path, Path] | None = None,
    alpn: list[str] | None = None,
    version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLSocket:
    """A TLS connection that checks the server against the test CA."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.maximum_version = version
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    if alpn:
        context.set_alpn_protocols(alpn)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port(server)))
    return context.wrap_socket(sock, server_hostname="localhost")


def _json(start_response: Any, data: object) -> list[bytes]:
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def app(environ: dict[str, Any], start_response: Any) -> Any:
    """/info: the environ's strings; /echo: what the body was; /slow: a second's work."""
    path = environ["PATH_INFO"]
    if path == "/info":
        return _json(start_response, {k: v for k, v in environ.items() if isinstance(v, str)})
    if path == "/echo":
        body = environ["wsgi.input"].read()
        seen = {
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "CONTENT_LENGTH": environ.get("CONTENT_LENGTH"),
        }
        return _json(start_response, seen)
    if path == "/slow":
        time.sleep(1.0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"Hello, World"]


# -- real clients, keep-alive ---------------------------------------------------------------------


def test_curl_with_the_test_ca_keeps_one_connection(
    start_server: StartServer, certs: Certs
) -> None:
    server = start_server(app, **tls(certs))
    where = f"localhost:{port(server)}:127.0.0.1"
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(certs.ca), "--resolve", where,
         "-w", "\n%{num_connects} %{http_code} %{scheme}\n",
         url(server), url(server, "/info"), url(server)],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "Hello, World" and lines[4] == "Hello, World"
    assert [lines[1], lines[3], lines[5]] == ["1 200 HTTPS", "0 200 HTTPS", "0 200 HTTPS"]
    info = json.loads(lines[2])
    assert info["wsgi.url_scheme"] == "https"
    assert info["HTTPS"] == "on" and info["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
    assert info["SSL_CLIENT_VERIFY"] == "NONE" and "SSL_CLIENT_S_DN" not in info


def test_requests_session_keeps_one_connection(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs))
    with requests.Session() as session:
        infos = [session.get(url(server, "/info"), verify=str(certs.ca)).json() for _ in range(5)]
        posted = session.post(url(server, "/echo"), data=b"x" * 5000, verify=str(certs.ca))
    assert len({info["REMOTE_PORT"] for info in infos}) == 1  # one connection for all
    assert all(info["wsgi.url_scheme"] == "https" for info in infos)
    assert posted.json()["length"] == 5000


def test_kakehashis_own_client(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs))
    result = cli("get", "--cacert", str(certs.ca), url(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, World"


def test_alpn_offers_http_1_1(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs))
    with tls_client(server, certs, alpn=["h2", "http/1.1"]) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(sock).read_response().body == b"Hello, World"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_pipelined_requests_over_one_tls_connection(
    start_server: StartServer, certs: Certs, version: ssl.TLSVersion
) -> None:
    """Twenty requests in one write, then a body whose record also carries the next request:
    OpenSSL keeps the rest of that record decrypted, where epoll cannot see it."""
    server = start_server(app, **tls(certs))
    with tls_client(server, certs, version=version) as sock:
        assert sock.version() == version.name.replace("_", ".")
        reader = Reader(sock)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        assert [reader.read_response().body for _ in range(20)] == [b"Hello, World"] * 20
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        time.sleep(0.3)  # the head alone: the body is read while the channel is parked
        sock.sendall(b"y" * 100 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(reader.read_response().body)["length"] == 100
        assert reader.read_response().body == b"Hello, World"  # no hang


# -- client certificates --------------------------------------------------------------------------


def test_a_required_client_certificate_is_checked(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs, cert_reqs="required", ca_certs=str(certs.ca)))
    mine = (str(certs.client_cert), str(certs.client_key))
    info = requests.get(url(server, "/info"), verify=str(certs.ca), cert=mine).json()
    assert info["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert info["SSL_CLIENT_S_DN"] == "CN=client,O=Kakehashi Tests"
    assert info["SSL_CLIENT_I_DN"] == "CN=test-ca"
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
        requests.get(url(server, "/info"), verify=str(certs.ca))
    stranger = (str(certs.stranger_cert), str(certs.stranger_key))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url(server, "/info"), verify=str(certs.ca), cert=stranger)
    assert requests.get(url(server), verify=str(certs.ca), cert=mine).text == "Hello, World"


def test_an_optional_client_certificate(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs, cert_reqs="optional", ca_certs=str(certs.ca)))
    mine = (str(certs.client_cert), str(certs.client_key))
    without = requests.get(url(server, "/info"), verify=str(certs.ca)).json()
    assert without["SSL_CLIENT_VERIFY"] == "NONE" and "SSL_CLIENT_S_DN" not in without
    with_cert = requests.get(url(server, "/info"), verify=str(certs.ca), cert=mine).json()
    assert with_cert["SSL_CLIENT_S_DN"] == "CN=client,O=Kakehashi Tests"


# -- silent connections and handshakes hold no thread --------------------------------------------


def test_1000_silent_connections_hold_no_thread(start_server: StartServer, certs: Certs) -> None:
    silent_count = 1000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * silent_count + 200:
        pytest.skip(f"RLIMIT_NOFILE {soft} too low")
    server = start_server(app, **tls(certs, threads=2))
    silent: list[socket.socket] = []
    try:
        for _ in range(silent_count):
            silent.append(connect(addr(server)))
        # TCP_DEFER_ACCEPT holds silent connections in the kernel for a second or so
        assert wait_until(lambda: len(server._poller.channels) >= silent_count, 15)
        handshaking = [c for c in channels_of(server) if c.phase is Phase.HANDSHAKE]
        assert len(handshaking) >= silent_count
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            with tls_client(server, certs) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert Reader(sock).read_response().body == b"Hello, World"
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0, slowest
    finally:
        for sock in silent:
            sock.close()


def test_a_silent_or_stalled_handshake_is_closed_at_the_header_timeout(
    start_server: StartServer, certs: Certs
) -> None:
    server = start_server(app, **tls(certs, header_timeout=1))
    with connect(addr(server)) as silent, connect(addr(server)) as stalled:
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, no more
        started = time.monotonic()
        assert Reader(stalled).closed(timeout=8)
        assert Reader(silent).closed(timeout=8)
        assert time.monotonic() - started < 8
    assert wait_until(lambda: not server._poller.channels, 5)


# -- plain HTTP to the TLS port ------------------------------------------------------------------


def test_plain_http_to_the_tls_port_gets_a_400(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs, header_timeout=1))
    result = subprocess.run(
        ["curl", "-sS", "-i", f"http://127.0.0.1:{port(server)}/"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    assert result.stdout.startswith("HTTP/1.1 400 Bad Request")
    assert "speaks HTTPS" in result.stdout
    with connect(addr(server)) as sock:  # what a client that took it for a proxy sends
        sock.sendall(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
        assert Reader(sock).read_response().status == 400
    with connect(addr(server)) as sock:  # bytes that are no HTTP at all: closed, no hang
        sock.sendall(b"hello there\r\n\r\n")
        assert Reader(sock).closed(timeout=3)
    with connect(addr(server)) as sock:  # too few bytes to judge: the header timeout
        sock.sendall(b"GE")
        assert Reader(sock).closed(timeout=6)
    assert requests.get(url(server), verify=str(certs.ca)).text == "Hello, World"


# -- the write path over TLS --------------------------------------------------------------------


def test_a_slow_tls_reader_of_a_large_stream_holds_no_thread(
    start_server: StartServer, certs: Certs
) -> None:
    done: list[int] = []
    total = 8 * MiB
    server = start_server(streamed(total, done=done), **tls(certs, threads=1))
    small_send_buffers(server)
    with tls_client(server, certs, rcvbuf=4096) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = sock.recv(1024)
        assert wait_until(lambda: done, 20)  # the application ran to its end on its thread
        out = waiting_output(server)
        assert out is not None and out.total > MiB  # spooled beyond memory, still queued
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        # the one thread is free: another client is served meanwhile
        assert requests.get(url(server), verify=str(certs.ca), timeout=5).status_code == 200
        raw = first + read_paced(sock, 4 * MiB)
    assert parse_response(raw).body == expected_stream(total)


def test_file_wrapper_over_tls(
    start_server: StartServer, certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    sendfile_calls: list[int] = []
    real_sendfile = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sendfile_calls.append(count)  # the kernel would send plaintext: never on TLS
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)
    closed = threading.Event()

    def file_app(environ: dict[str, Any], start_response: Any) -> Any:
        f = open(path, "rb")  # noqa: SIM115 - closed by the wrapper's close()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapper = environ["wsgi.file_wrapper"](f, 8192)
        real_close = wrapper.close

        def close() -> None:
            real_close()
            closed.set()

        wrapper.close = close  # type: ignore[method-assign]
        return wrapper

    server = start_server(file_app, **tls(certs, threads=1))
    small_send_buffers(server)
    with tls_client(server, certs, rcvbuf=4096) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = sock.recv(1024)
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        assert not closed.is_set()  # the region waits, its file open
        raw = first + read_paced(sock, 8 * MiB)
    assert parse_response(raw).body == data
    assert closed.wait(5)
    fast = requests.get(url(server), verify=str(certs.ca), timeout=10)
    assert fast.content == data
    assert not sendfile_calls


def _chunks(count: int, size: int) -> Iterator[bytes]:
    for n in range(count):
        yield bytes([n % 251]) * size


@pytest.mark.parametrize(("count", "size"), [(10, 1000), (40, 65536)])
def test_a_chunked_upload_over_tls(
    start_server: StartServer, certs: Certs, count: int, size: int
) -> None:
    """Small: read while parked; 2.5 MiB: past --buffer-body-size, streamed to the app."""
    server = start_server(app, **tls(certs))
    sent = b"".join(_chunks(count, size))
    seen = requests.post(url(server, "/echo"), data=_chunks(count, size), verify=str(certs.ca))
    assert seen.json()["length"] == len(sent)
    assert seen.json()["sha256"] == hashlib.sha256(sent).hexdigest()
    large = os.urandom(3 * MiB)  # a Content-Length body streamed to the app
    seen = requests.post(url(server, "/echo"), data=large, verify=str(certs.ca))
    assert seen.json()["sha256"] == hashlib.sha256(large).hexdigest()


def test_expect_100_continue_over_tls(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, **tls(certs))
    body = os.urandom(2 * MiB)
    with tls_client(server, certs) as sock:
        reader = Reader(sock)
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        assert reader.read_response().status == 100  # asked for once the app reads
        sock.sendall(body)
        seen = json.loads(reader.read_response().body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()


def test_shutdown_finishes_a_tls_request_in_flight(start_server: StartServer, certs: Certs) -> None:
    server = start_server(app, request_timeout=60, **tls(certs))  # 60: ctx.watch is kept
    answers: list[Any] = []

    def call() -> None:
        with requests.Session() as session:
            answers.append(session.get(url(server, "/slow"), verify=str(certs.ca), timeout=10))

    client = threading.Thread(target=call)
    client.start()
    assert wait_until(lambda: server.ctx.watch.running, 5)  # the request is running
    stopper = threading.Thread(target=server.shutdown, args=(10,))
    stopper.start()
    client.join(10)
    stopper.join(10)
    assert not stopper.is_alive()
    assert answers and answers[0].status_code == 200 and answers[0].text == "done"
    assert answers[0].headers["Connection"] == "close"


def test_shutdown_closes_handshakes_with_the_idle_connections(
    start_server: StartServer, certs: Certs
) -> None:
    """A handshake under way is no request: it does not hold shutdown for the header timeout."""
    server = start_server(app, **tls(certs, header_timeout=30, shutdown_linger=0.5))
    silent = [connect(addr(server)) for _ in range(5)]
    try:
        assert wait_until(lambda: len(server._poller.channels) == 5, 15)
        started = time.monotonic()
        server.shutdown(timeout=20)
        assert time.monotonic() - started < 5
        assert all(Reader(sock).closed(timeout=2) for sock in silent)
    finally:
        for sock in silent:
            sock.close()


def test_shutdown_lets_a_queued_tls_response_finish(
    start_server: StartServer, certs: Certs
) -> None:
    total = 2 * MiB
    server = start_server(streamed(total), **tls(certs))
    small_send_buffers(server)
    with tls_client(server, certs, rcvbuf=4096) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: any(c.phase is Phase.WRITE for c in channels_of(server)))
        stopper = threading.Thread(target=server.shutdown, args=(10,))
        stopper.start()
        time.sleep(0.3)  # the listeners and the idle connections are closed by now
        raw = read_paced(sock, 1e9)
        stopper.join(5)
        assert not stopper.is_alive()
    assert parse_response(raw).body == expected_stream(total)
