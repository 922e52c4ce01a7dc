"""The client over real loopback sockets, against the stdlib http.server and raw sockets."""

from __future__ import annotations

import builtins
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi import client
from kakehashi.client import Client, Timeout
from kakehashi.errors import ConnectError, ReadError, ReadTimeout, RemoteProtocolError
from tests.client.servers import (
    LARGE,
    free_port,
    http_server,
    raw_server,
    self_signed_cert,
    silent,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with http_server() as url:
        yield url


@pytest.fixture
def c() -> Iterator[Client]:
    with Client(timeout=5) as one:
        yield one


def test_one_shot_get(base: str) -> None:
    r = client.get(base + "/")
    assert (r.status, r.reason, r.body) == (200, "OK", b"Hello, World")
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["CONTENT-LENGTH"] == "12"


def test_keep_alive_reuses_the_same_socket(base: str, c: Client) -> None:
    ports = [c.get(base + "/port").body for _ in range(5)]
    assert len(set(ports)) == 1
    assert c.transport.connections_opened == 1


def test_separate_clients_use_separate_sockets(base: str) -> None:
    assert client.get(base + "/port").body != client.get(base + "/port").body


def test_chunked_response(base: str, c: Client) -> None:
    r = c.get(base + "/chunked")
    assert r.body == b"Hello, chunked World"
    assert c.get(base + "/chunked").reused


def test_close_delimited_http10_response(base: str, c: Client) -> None:
    r = c.get(base + "/close")
    assert (r.http_version, r.body) == ("1.0", b"until the server closes" * 1000)
    assert not c.get(base + "/").reused


def test_head_has_no_body_and_keeps_the_connection(base: str, c: Client) -> None:
    r = c.head(base + "/large")
    assert (r.body, r.headers["content-length"]) == (b"", str(len(LARGE)))
    assert c.head(base + "/chunked").body == b""
    assert c.get(base + "/").reused


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(base: str, c: Client, status: int) -> None:
    r = c.get(base + f"/{status}")
    assert (r.status, r.body) == (status, b"")
    assert c.get(base + "/").reused


def test_large_body_whole_and_streamed(base: str, c: Client) -> None:
    assert c.get(base + "/large").body == LARGE
    with c.stream("GET", base + "/large") as r:
        sizes = [len(piece) for piece in r.iter_bytes()]
    assert sum(sizes) == len(LARGE) and max(sizes) <= 64 * 1024 and len(sizes) > 1
    assert c.get(base + "/").reused


def test_a_body_cut_short_is_a_read_error_not_a_short_body(base: str, c: Client) -> None:
    with pytest.raises(ReadError) as info:
        c.get(base + "/truncated")
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert "990 bytes" in str(info.value)


def test_a_server_stalling_mid_body_times_out(base: str) -> None:
    start = time.monotonic()
    with pytest.raises(ReadTimeout):
        client.get(base + "/stall", timeout=0.3)
    assert time.monotonic() - start < 1.4


def test_request_bodies_with_length_and_chunked(base: str, c: Client) -> None:
    r = c.post(base + "/echo", body=b"x" * 200_000)
    assert (r.body, r.headers["x-framing"]) == (b"x" * 200_000, "length")
    r = c.post(base + "/echo", body=iter([b"a" * 70_000, b"b" * 70_000]))
    assert (r.body, r.headers["x-framing"]) == (b"a" * 70_000 + b"b" * 70_000, "chunked")
    assert r.reused


def test_file_body(base: str, c: Client, tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(LARGE[:1_000_000])
    with path.open("rb") as f:
        r = c.put(base + "/up", body=f)
    assert r.body == LARGE[:1_000_000] and r.headers["x-framing"] == "length"


def test_repeated_fields_are_kept(base: str, c: Client) -> None:
    r = c.get(base + "/headers", headers=[("X-Multi", "1"), ("X-Multi", "2")])
    assert r.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert b"X-Multi: 1\nX-Multi: 2" in r.body


def test_redirect_followed(base: str, c: Client) -> None:
    assert c.get(base + "/redirect").status == 302
    r = c.get(base + "/redirect", follow_redirects=True)
    assert (r.status, r.body, len(r.history)) == (200, b"Hello, World", 1)


def test_a_server_that_never_answers_times_out() -> None:
    with raw_server(silent) as (host, port):
        start = time.monotonic()
        with pytest.raises(ReadTimeout) as info:
            client.get(f"http://{host}:{port}/", timeout=Timeout(connect=1, read=0.3))
        elapsed = time.monotonic() - start
    assert isinstance(info.value, builtins.TimeoutError)
    assert 0.25 < elapsed < 2


def test_a_server_that_closes_at_once_is_a_read_error() -> None:
    with raw_server(lambda conn: None) as (host, port), pytest.raises(ReadError):
        client.get(f"http://{host}:{port}/")


def test_a_server_that_answers_garbage_is_a_protocol_error() -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"this is not http\r\n\r\n")

    with raw_server(garbage) as (host, port), pytest.raises(RemoteProtocolError):
        client.get(f"http://{host}:{port}/")


def test_server_closing_an_idle_connection_is_retried_transparently() -> None:
    def once(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        # then close: the client holds a kept-alive connection that is dead

    with raw_server(once, connections=2) as (host, port), Client(timeout=2) as c:
        assert c.get(f"http://{host}:{port}/").body == b"ok"
        time.sleep(0.1)
        assert c.get(f"http://{host}:{port}/").body == b"ok"
        assert c.transport.connections_opened == 2


def test_connection_refused_is_a_connect_error() -> None:
    with pytest.raises(ConnectError) as info:
        client.get(f"http://127.0.0.1:{free_port()}/", timeout=1)
    assert isinstance(info.value, ConnectionError)


# --- https ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_https_with_a_trusted_certificate(cert: tuple[Path, Path]) -> None:
    key, crt = cert
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    client_ctx = ssl.create_default_context(cafile=str(crt))
    with http_server(server_ctx) as url, Client(ssl_context=client_ctx, timeout=5) as c:
        assert c.get(url + "/").body == b"Hello, World"
        assert c.get(url + "/chunked").reused


def test_https_refuses_an_unknown_certificate(cert: tuple[Path, Path]) -> None:
    key, crt = cert
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    with http_server(server_ctx) as url, pytest.raises(ConnectError, match="CERTIFICATE"):
        client.get(url + "/", timeout=5)
