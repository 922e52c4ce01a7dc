"""``kakehashi.client.websocket`` when things go wrong, on real sockets: a server that vanishes
or goes silent, one that breaks the protocol, ``wss://`` with a test CA (and without it), a
``CONNECT`` proxy, and every bad argument a caller can pass."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("websockets")

from kakehashi.client import websocket
from kakehashi.errors import (
    ConnectError,
    LocalWebSocketError,
    WebSocketClosed,
)
from kakehashi.websocket import serialize_frame
from tests.client.proxy_server import proxy_server
from tests.client.servers import free_port
from tests.client.ws_servers import raw_ws_server, ws_server
from tests.integration.tls_certs import Certs, have_openssl, module_certs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
NEEDS_OPENSSL = pytest.mark.skipif(not have_openssl(), reason="needs openssl for certificates")


def _read_close_frame(conn: socket.socket) -> tuple[int, bytes]:
    """Read the client's (masked) Close frame; returns its code and reason."""
    conn.settimeout(5)
    data = b""
    while len(data) < 2 or len(data) < 6 + (data[1] & 0x7F):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data[0] == 0x88, data  # FIN + Close
    length, mask = data[1] & 0x7F, data[2:6]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[6 : 6 + length]))
    return struct.unpack("!H", payload[:2])[0], payload[2:]


def test_a_server_that_vanishes_gives_1006() -> None:
    def vanish(conn: socket.socket) -> None:
        conn.sendall(serialize_frame(0x1, b"last words"))  # then TCP FIN, no Close frame

    with raw_ws_server(vanish) as url, websocket.connect(url) as sock:
        assert sock.recv(timeout=5) == "last words"
        start = time.monotonic()
        with pytest.raises(WebSocketClosed, match="without a close handshake") as info:
            sock.recv(timeout=5)
        assert time.monotonic() - start < 2
    assert info.value.close_code == 1006
    assert not info.value.ok


def test_iteration_raises_when_the_server_vanishes() -> None:
    with (
        raw_ws_server(lambda conn: None) as url,
        websocket.connect(url) as sock,
        pytest.raises(WebSocketClosed) as info,
    ):
        for _ in sock:
            pass
    assert info.value.close_code == 1006


def test_a_silent_server_is_given_up_after_the_keepalive_ping() -> None:
    def silent(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            while conn.recv(4096):  # reads the ping, never answers
                pass
        except OSError:
            pass

    with raw_ws_server(silent) as url:
        sock = websocket.connect(url, ping_interval=0.2, ping_timeout=0.3)
        start = time.monotonic()
        with pytest.raises(WebSocketClosed, match="no answer to a ping") as info:
            sock.recv()  # no timeout: the keepalive bounds the wait
        assert 0.4 < time.monotonic() - start < 3
        assert info.value.close_code == 1006
        sock.close()


@pytest.mark.parametrize(
    "frame, code",
    [
        (bytes([0x81, 0x85]) + b"mask" + b"hello", 1002),  # a masked frame from a server
        (bytes([0x83, 0x00]), 1002),  # a reserved opcode
        (serialize_frame(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (serialize_frame(0x1, b"x" * 2000), 1009),  # over max_message_bytes
    ],
    ids=["masked", "opcode", "utf8", "too-big"],
)
def test_a_protocol_error_fails_the_connection_with_its_code(frame: bytes, code: int) -> None:
    sent: list[tuple[int, bytes]] = []

    def misbehave(conn: socket.socket) -> None:
        conn.sendall(serialize_frame(0x1, b"fine") + frame)
        sent.append(_read_close_frame(conn))
        conn.close()  # as a server does after the client's Close

    with (
        raw_ws_server(misbehave) as url,
        websocket.connect(url, max_message_bytes=1000, compression=False) as sock,
    ):
        assert sock.recv(timeout=5) == "fine"  # what came before the error is delivered
        with pytest.raises(WebSocketClosed) as info:
            sock.recv(timeout=5)
    assert info.value.close_code == code
    assert sent and sent[0][0] == code


def test_the_client_waits_for_the_servers_tcp_close_with_a_deadline() -> None:
    def linger(conn: socket.socket) -> None:
        _read_close_frame(conn)
        conn.sendall(serialize_frame(0x8, struct.pack("!H", 1000)))
        time.sleep(2)  # never closes TCP in time

    with raw_ws_server(linger) as url:
        sock = websocket.connect(url, close_timeout=0.5)
        start = time.monotonic()
        sock.close()
        assert time.monotonic() - start < 1.5
        assert sock.close_code == 1000


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return module_certs(tmp_path_factory)


@pytest.fixture(scope="module")
def tls_url(certs: Certs) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    with ws_server(ssl_context=context) as url:
        yield url


@NEEDS_OPENSSL
@pytest.mark.parametrize("compressed", [False, True])
def test_wss_with_the_test_ca(tls_url: str, certs: Certs, compressed: bool) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    with websocket.connect(tls_url, ssl_context=context, compression=compressed) as sock:
        sock.send("over TLS")
        assert sock.recv(timeout=5) == "over TLS"
        sock.send(b"\x00" * 300_000)
        assert sock.recv(timeout=5) == b"\x00" * 300_000
        assert sock.ping(timeout=5) > 0


@NEEDS_OPENSSL
def test_wss_refuses_an_unknown_certificate(tls_url: str) -> None:
    with pytest.raises(ConnectError, match="TLS"):
        websocket.connect(tls_url)  # the system store does not know the test CA


def test_through_a_connect_proxy() -> None:
    with (
        ws_server() as url,
        proxy_server() as (proxy, log),
        websocket.connect(url, proxies=proxy) as sock,
    ):
        sock.send("tunnelled")
        assert sock.recv(timeout=5) == "tunnelled"
    assert log.lines == [f"CONNECT {url.removeprefix('ws://')} HTTP/1.1"]


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with ws_server() as url, proxy_server() as (proxy, log):
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with websocket.connect(url) as sock:
            sock.send("via env")
            assert sock.recv(timeout=5) == "via env"
        with websocket.connect(url, trust_env=False) as sock:
            sock.send("direct")
            assert sock.recv(timeout=5) == "direct"
    assert len(log.lines) == 1


def test_nothing_listening_is_a_connect_error() -> None:
    with pytest.raises(ConnectError):
        websocket.connect(f"ws://127.0.0.1:{free_port()}/", timeout=2)


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1/", "ws:// or wss://"),
        ("ws://127.0.0.1/#frag", "fragment"),
        ("ws:///path", "no host"),
        ("wss://127.0.0.1:99999/", "bad port"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        websocket.connect(url)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="set by the WebSocket handshake"):
        websocket.connect("ws://127.0.0.1:1/", headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError, match="ISO-8859-1"):
        websocket.connect("ws://127.0.0.1:1/", headers={"X-Name": "名前"})
    with pytest.raises(ValueError, match="compression"):
        websocket.connect("ws://127.0.0.1:1/", compression="yes")  # type: ignore[arg-type]
    with pytest.raises(LocalWebSocketError, match="tokens"):
        websocket.connect("ws://127.0.0.1:1/", subprotocols=["not a token"])
    with pytest.raises(ValueError, match="timeout"):
        websocket.connect("ws://127.0.0.1:1/", timeout=0)


def test_misuse_of_an_open_websocket_is_refused(tmp_path: Path) -> None:
    with ws_server() as url, websocket.connect(url) as sock:
        with pytest.raises(LocalWebSocketError, match="125"):
            sock.ping(b"x" * 126)
        with pytest.raises(LocalWebSocketError):
            sock.close(1005)  # reports only, never sent
        with pytest.raises(LocalWebSocketError):
            sock.close(1000, "r" * 124)
        sock.send("still open")
        assert sock.recv(timeout=5) == "still open"
        sock.close()
        with pytest.raises(WebSocketClosed):
            sock.ping()
        with pytest.raises(WebSocketClosed):
            sock.recv(timeout=1)
