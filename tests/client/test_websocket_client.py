"""``kakehashi.client.websocket`` against a real peer: the ``websockets`` library's server on
127.0.0.1, with and without compression: messages both ways, big and fragmented ones,
subprotocols, handshake headers, pings both ways, close codes both ways, threads."""

from __future__ import annotations

import os
import threading
import time
from http import HTTPStatus

import pytest

pytest.importorskip("websockets")

from websockets.datastructures import Headers as WHeaders
from websockets.http11 import Request as WRequest
from websockets.http11 import Response as WResponse
from websockets.sync.server import ServerConnection

from kakehashi.client import websocket
from kakehashi.errors import HandshakeError, HandshakeRefused, ReadTimeout, WebSocketClosed
from kakehashi.websocket import DeflateSettings, FrameHeader, Opcode
from tests.client.ws_servers import drain, ws_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

COMPRESSION = pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])


def _server_compression(compressed: bool) -> str | None:
    return "deflate" if compressed else None


@COMPRESSION
def test_text_and_binary_messages_echo(compressed: bool) -> None:
    with ws_server(compression=_server_compression(compressed)) as url:
        with websocket.connect(url + "/echo", compression=compressed) as sock:
            assert (sock.handshake.deflate is not None) is compressed
            assert sock.handshake.status_code == 101
            sock.send("héllo")
            assert sock.recv(timeout=5) == "héllo"
            sock.send(b"\x00\xff" * 10)
            assert sock.recv(timeout=5) == b"\x00\xff" * 10
            sock.send(bytearray(b"ba"))
            assert sock.recv(timeout=5) == b"ba"
            sock.send("")
            assert sock.recv(timeout=5) == ""
        assert sock.close_code == 1000


@COMPRESSION
def test_big_messages_both_ways(compressed: bool) -> None:
    text = "kakehashi " * 400_000  # 4 MB, compressible
    blob = os.urandom(3 << 20)  # 3 MiB, not compressible
    with (
        ws_server(compression=_server_compression(compressed)) as url,
        websocket.connect(url, compression=compressed, timeout=30) as sock,
    ):
        sock.send(text)
        assert sock.recv(timeout=30) == text
        sock.send(blob)
        assert sock.recv(timeout=30) == blob


@COMPRESSION
def test_fragmented_messages_both_ways(compressed: bool) -> None:
    got: list[str | bytes] = []

    def handler(conn: ServerConnection) -> None:
        conn.send(["frag", "ment", "ed"])  # a text message in three frames
        conn.send([b"\x01", b"\x02"])
        got.append(conn.recv())
        got.append(conn.recv())

    frames: list[tuple[FrameHeader, bool]] = []
    with ws_server(handler, compression=_server_compression(compressed)) as url:
        hook = lambda head, out: frames.append((head, out))  # noqa: E731
        with websocket.connect(url, compression=compressed, on_frame=hook) as sock:
            assert sock.recv(timeout=5) == "fragmented"
            assert sock.recv(timeout=5) == b"\x01\x02"
            sock.send(["one ", "two ", "three"])
            sock.send(iter([b"a", b"b"]))
            with pytest.raises(WebSocketClosed):
                sock.recv(timeout=5)  # the handler returned: the server closes
    assert got == ["one two three", b"ab"]
    received = [h for h, out in frames if not out and h.opcode != Opcode.CLOSE]
    first = received[: [h.fin for h in received].index(True) + 1]  # the first message's frames
    assert len(first) >= 3  # websockets ends a fragmented message with an empty frame
    assert [h.opcode for h in first] == [Opcode.TEXT] + [Opcode.CONTINUATION] * (len(first) - 1)
    sent = [h for h, out in frames if out and h.opcode != Opcode.CLOSE]
    assert [(h.opcode, h.fin, h.mask is not None) for h in sent[:3]] == [
        (Opcode.TEXT, False, True),
        (Opcode.CONTINUATION, False, True),
        (Opcode.CONTINUATION, True, True),
    ]
    assert (sent[0].rsv == 4) is compressed  # RSV1 on the first frame only
    assert sent[1].rsv == 0


def test_fragments_must_be_of_one_kind() -> None:
    with ws_server() as url, websocket.connect(url) as sock:
        with pytest.raises(TypeError, match="all be str or all be bytes"):
            sock.send(["a", b"b"])
        with pytest.raises(TypeError, match="at least one fragment"):
            sock.send([])
        with pytest.raises(TypeError, match="str or bytes"):
            sock.send(42)  # type: ignore[arg-type]


def test_subprotocol_is_negotiated() -> None:
    with ws_server(subprotocols=["chat", "superchat"]) as url:
        with websocket.connect(url, subprotocols=["superchat"]) as sock:
            assert sock.subprotocol == "superchat"
        with websocket.connect(url, subprotocols=["other", "chat"]) as sock:
            assert sock.subprotocol == "chat"
    with ws_server() as url, websocket.connect(url, subprotocols=["chat"]) as sock:
        assert sock.subprotocol is None


def test_handshake_carries_the_callers_headers() -> None:
    seen: dict[str, str | None] = {}

    def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        for name in ("X-Token", "Origin", "User-Agent", "Host"):
            seen[name] = conn.request.headers.get(name)
        conn.send("ok")

    with ws_server(handler) as url:
        headers = {"X-Token": "abc", "Origin": "http://127.0.0.1"}
        with websocket.connect(url + "/path?q=1", headers=headers) as sock:
            assert sock.recv(timeout=5) == "ok"
    assert seen["X-Token"] == "abc"
    assert seen["Origin"] == "http://127.0.0.1"
    assert seen["User-Agent"] is not None and seen["User-Agent"].startswith("kakehashi/")
    assert seen["Host"] == url.removeprefix("ws://")


def test_a_refused_handshake_is_a_handshake_error() -> None:
    def refuse(conn: ServerConnection, request: WRequest) -> WResponse:
        return conn.respond(HTTPStatus.FORBIDDEN, "go away\n")

    with (
        ws_server(process_request=refuse) as url,
        pytest.raises(HandshakeRefused, match="refused the WebSocket handshake with 403") as info,
    ):
        websocket.connect(url + "/room")
    refused = info.value
    assert isinstance(refused, HandshakeError)  # what callers catching the parent see
    assert (refused.status_hint, refused.reason) == (403, "Forbidden")
    assert refused.request_head.startswith(b"GET /room HTTP/1.1\r\n")
    assert (b"Content-Length", b"8") in refused.response_headers
    assert refused.body == b"go away\n"


def test_only_the_start_of_a_refusals_body_is_kept() -> None:
    def refuse(conn: ServerConnection, request: WRequest) -> WResponse:
        return conn.respond(HTTPStatus.NOT_FOUND, "n" * 200_000)

    with ws_server(process_request=refuse) as url, pytest.raises(HandshakeRefused) as info:
        websocket.connect(url)
    assert info.value.status_hint == 404
    assert info.value.body == b"n" * 4096


def test_a_101_with_a_wrong_accept_key_is_refused() -> None:
    def forge(conn: ServerConnection, request: WRequest, response: WResponse) -> WResponse:
        headers = WHeaders(response.headers)
        headers["Sec-WebSocket-Accept"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        return WResponse(response.status_code, response.reason_phrase, headers, response.body)

    with (
        ws_server(process_response=forge) as url,
        pytest.raises(HandshakeError, match="Sec-WebSocket-Accept"),
    ):
        websocket.connect(url)


@COMPRESSION
def test_ping_measures_the_round_trip(compressed: bool) -> None:
    with (
        ws_server(compression=_server_compression(compressed)) as url,
        websocket.connect(url, compression=compressed) as sock,
    ):
        rtts = [sock.ping(timeout=5) for _ in range(3)]
        assert all(0 < rtt < 5 for rtt in rtts)
        assert sock.ping(b"payload", timeout=5) > 0
        sock.send("after pings")  # messages flow as before
        assert sock.recv(timeout=5) == "after pings"


def test_server_pings_are_answered_while_receiving() -> None:
    def handler(conn: ServerConnection) -> None:
        pong = conn.ping(b"are you there")
        conn.send("ponged" if pong.wait(5) else "no pong")

    with ws_server(handler) as url, websocket.connect(url) as sock:
        assert sock.recv(timeout=10) == "ponged"


def test_client_close_code_and_reason_reach_the_server() -> None:
    seen: list[tuple[int | None, str | None]] = []

    def handler(conn: ServerConnection) -> None:
        drain(conn)
        seen.append((conn.close_code, conn.close_reason))

    with ws_server(handler) as url:
        sock = websocket.connect(url)
        sock.send("x")
        sock.close(4000, "done here")
        sock.close()  # a second close does nothing
        with pytest.raises(WebSocketClosed) as info:
            sock.send("too late")
        assert info.value.close_code == 4000  # the server echoed our code
        time.sleep(0.2)
    assert seen == [(4000, "done here")]


@pytest.mark.parametrize(
    "code, reason, ok", [(1000, "", True), (1001, "bye", True), (4001, "custom", False)]
)
def test_server_close_code_and_reason_reach_the_client(code: int, reason: str, ok: bool) -> None:
    def handler(conn: ServerConnection) -> None:
        conn.send("first")
        conn.close(code, reason)

    with ws_server(handler) as url, websocket.connect(url) as sock:
        if ok:
            assert list(sock) == ["first"]  # iteration ends at a normal close
        else:
            assert sock.recv(timeout=5) == "first"
            with pytest.raises(WebSocketClosed) as info:
                list(sock)
            assert not info.value.ok
        with pytest.raises(WebSocketClosed) as closed:
            sock.recv(timeout=5)
    assert (closed.value.close_code, closed.value.reason) == (code, reason)
    assert (sock.close_code, sock.close_reason) == (code, reason)


def test_a_message_over_the_limit_closes_with_1009() -> None:
    seen: list[int | None] = []

    def handler(conn: ServerConnection) -> None:
        conn.send("x" * 1000)
        conn.send("y" * 1001)
        drain(conn)
        seen.append(conn.close_code)

    with (
        ws_server(handler) as url,
        websocket.connect(url, max_message_bytes=1000, compression=False) as sock,
    ):
        assert sock.recv(timeout=5) == "x" * 1000
        with pytest.raises(WebSocketClosed) as info:
            sock.recv(timeout=5)
    assert info.value.close_code == 1009
    time.sleep(0.2)
    assert seen == [1009]


def test_recv_timeout_leaves_the_websocket_usable() -> None:
    def handler(conn: ServerConnection) -> None:
        time.sleep(0.5)
        conn.send("late")
        conn.recv()

    with ws_server(handler) as url, websocket.connect(url) as sock:
        with pytest.raises(ReadTimeout):
            sock.recv(timeout=0.1)
        assert sock.recv(timeout=5) == "late"


def test_send_from_one_thread_while_another_receives() -> None:
    with ws_server() as url, websocket.connect(url) as sock:
        received: list[str | bytes] = []
        reader = threading.Thread(target=lambda: received.extend(sock.recv(10) for _ in range(50)))
        reader.start()
        time.sleep(0.05)  # the reader is blocked in recv
        senders = [
            threading.Thread(target=lambda i=i: [sock.send(f"{i}-{n}") for n in range(10)])
            for i in range(5)
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join(10)
        assert sock.ping(timeout=5) > 0  # a third kind of caller, while the reader reads
        reader.join(10)
    assert sorted(received) == sorted(f"{i}-{n}" for i in range(5) for n in range(10))
    for i in range(5):  # each thread's messages stay in order
        assert [m for m in received if str(m).startswith(f"{i}-")] == [
            f"{i}-{n}" for n in range(10)
        ]


def test_compression_settings_are_offered_as_given() -> None:
    settings = DeflateSettings(client_no_context_takeover=True, server_max_window_bits=10)
    with (
        ws_server(compression="deflate") as url,
        websocket.connect(url, compression=settings) as sock,
    ):
        deflate = sock.handshake.deflate
        assert deflate is not None
        assert deflate.client_no_context_takeover
        assert deflate.server_max_window_bits == 10
        sock.send("compressed " * 100)
        assert sock.recv(timeout=5) == "compressed " * 100
