"""The PROXY protocol on real sockets: by hand (split, malformed, not allowed, silent) and from
a real HAProxy with ``send-proxy`` and ``send-proxy-v2``.

Clients connect from 127.0.0.2, so the address the app sees can only have come from the
header: the proxy (or the test acting as one) connects from 127.0.0.1.  Every test runs on
both engines (the ASGI application shows the scope's ``client``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.servers import free_port
from tests.integration.daemons import running
from tests.server.edge.test_proxy_protocol import inet, v2
from tests.wire import Reader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HAPROXY = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
CLIENT_HOST = "127.0.0.2"


def peer_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = json.dumps([environ["REMOTE_ADDR"], environ["REMOTE_PORT"]]).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def peer_app_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    host, port = scope["client"]
    body = json.dumps([host, str(port)]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


APPS = (peer_app, peer_app_asgi)
StartEngine = Callable[..., Any]
Server = Any


def address(server: Server) -> tuple[str, int]:
    host, port = server.addresses[0].rsplit(":", 1)
    return host, int(port)


@contextlib.contextmanager
def connection(server: Server, source: str = "127.0.0.1") -> Iterator[socket.socket]:
    sock = socket.create_connection(address(server), timeout=5, source_address=(source, 0))
    with sock:
        yield sock


def peer_of(reader: Reader) -> list[Any]:
    response = reader.read_response()
    assert response.status == 200, response.body
    seen: list[Any] = json.loads(response.body)
    return seen


def assert_closed_without_response(sock: socket.socket) -> None:
    sock.settimeout(5)
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass  # closed with our bytes unread: also a close


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_v1_header_then_keep_alive_requests(start_engine: StartEngine, mode: str) -> None:
    server = start_engine(*APPS, proxy_protocol=mode, proxy_allow_from="127.0.0.1")
    with connection(server) as sock:
        reader = Reader(sock)
        sock.sendall(b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n" + REQUEST)
        assert peer_of(reader) == ["198.51.100.7", "51000"]
        sock.sendall(REQUEST)  # the header came once; the connection keeps its client
        assert peer_of(reader) == ["198.51.100.7", "51000"]


def test_v2_header_trickled_byte_by_byte(start_engine: StartEngine) -> None:
    server = start_engine(*APPS, proxy_protocol="v2", proxy_allow_from="127.0.0.1")
    header = v2(family=2, addresses=inet("2001:db8::7", "2001:db8::1", 4711, 80),
                tlvs=b"\x01\x00\x08http/1.1")  # fmt: skip
    with connection(server) as sock:
        for byte in header + REQUEST[:5]:
            sock.send(bytes([byte]))
            time.sleep(0.002)
        sock.sendall(REQUEST[5:])
        assert peer_of(Reader(sock)) == ["2001:db8::7", "4711"]


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 65536\r\n" + REQUEST,
        b"PROXY TCP4 198.51.100.7\r\n" + REQUEST,
        v2(version=1) + REQUEST,
        REQUEST,  # an allowed peer must send a header
    ],
)
def test_malformed_or_missing_header_closes(start_engine: StartEngine, data: bytes) -> None:
    server = start_engine(*APPS, proxy_protocol="auto", proxy_allow_from="127.0.0.1")
    with connection(server) as sock:
        sock.sendall(data)
        assert_closed_without_response(sock)
    with connection(server) as sock:  # the server is still up
        sock.sendall(v2() + REQUEST)
        assert peer_of(Reader(sock)) == ["198.51.100.7", "51000"]


def test_peer_not_allowed(start_engine: StartEngine) -> None:
    server = start_engine(*APPS, proxy_protocol="auto", proxy_allow_from="127.0.0.1")
    with connection(server, CLIENT_HOST) as sock:  # plain HTTP: served as it is
        sock.sendall(REQUEST)
        seen = peer_of(Reader(sock))
        assert seen == [CLIENT_HOST, str(sock.getsockname()[1])]
    with connection(server, CLIENT_HOST) as sock:  # a header it has no right to send
        sock.sendall(b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n" + REQUEST)
        assert_closed_without_response(sock)


def test_partial_header_is_closed_at_the_header_timeout(start_engine: StartEngine) -> None:
    server = start_engine(*APPS, proxy_protocol="v1", header_timeout=1.0)
    with connection(server) as sock:
        sock.sendall(b"PROXY TCP4 198.51")
        started = time.monotonic()
        assert_closed_without_response(sock)
        assert 0.5 < time.monotonic() - started < 4.5


def test_proxy_protocol_off_treats_a_header_as_a_bad_request(start_engine: StartEngine) -> None:
    server = start_engine(*APPS)
    with connection(server) as sock:
        sock.sendall(b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n" + REQUEST)
        assert Reader(sock).read_response().status == 400


# -- a real HAProxy in front ----------------------------------------------------------------

HAPROXY_CONFIG = """
global
    maxconn 64
defaults
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend http_v1
    mode http
    bind 127.0.0.1:{v1_port}
    default_backend send_proxy
frontend tcp_v2
    mode tcp
    bind 127.0.0.1:{v2_port}
    default_backend send_proxy_v2
backend send_proxy
    mode http
    server kakehashi {v1_upstream} send-proxy
backend send_proxy_v2
    mode tcp
    server kakehashi {v2_upstream} send-proxy-v2
"""


@pytest.fixture
def haproxy(start_engine: StartEngine, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """HAProxy: an HTTP frontend to a ``--proxy-protocol v1`` kakehashi with send-proxy, and
    a TCP frontend to a ``v2`` one with send-proxy-v2.  Yields the two frontend ports."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    one = start_engine(*APPS, proxy_protocol="v1", proxy_allow_from="127.0.0.1")
    two = start_engine(*APPS, proxy_protocol="v2", proxy_allow_from="127.0.0.1")
    ports = free_port(), free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(v1_port=ports[0], v2_port=ports[1],
        v1_upstream=one.addresses[0], v2_upstream=two.addresses[0]))  # fmt: skip
    with running([HAPROXY, "-db", "-f", str(config)], tmp_path / "haproxy.log", *ports):
        yield ports


@pytest.mark.parametrize("frontend", [0, 1], ids=["send-proxy", "send-proxy-v2"])
def test_haproxy_remote_addr_is_the_clients(haproxy: tuple[int, int], frontend: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", haproxy[frontend], timeout=10,
                                      source_address=(CLIENT_HOST, 0))  # fmt: skip
    with contextlib.closing(conn):
        for _ in range(3):  # keep-alive through the proxy
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            seen = json.loads(response.read())
            assert conn.sock is not None
            assert seen == [CLIENT_HOST, str(conn.sock.getsockname()[1])]
