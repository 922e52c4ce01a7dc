"""Cross-checks against the ``websockets`` library's own sans-I/O protocol, both roles, with and
without permessage-deflate: its bytes parse here, ours parse there, and frames are identical."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("websockets")

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close, Frame
from websockets.frames import Opcode as WOpcode
from websockets.http11 import Request as WRequest
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from kakehashi import http1
from kakehashi.websocket import (
    BytesMessage,
    ClientHandshake,
    CloseReceived,
    Connection,
    DeflateSettings,
    Opcode,
    Ping,
    Pong,
    Role,
    TextMessage,
    accept,
    read_upgrade_request,
    serialize_frame,
)

PAYLOADS = [b"", b"x", bytes(125), bytes(126), os.urandom(65535), os.urandom(65536)]


@pytest.mark.parametrize("payload", PAYLOADS, ids=len)
@pytest.mark.parametrize(
    "opcode, wop",
    [
        (Opcode.TEXT, WOpcode.TEXT),
        (Opcode.BINARY, WOpcode.BINARY),
        (Opcode.CONTINUATION, WOpcode.CONT),
    ],
)
@pytest.mark.parametrize("fin", [True, False])
def test_unmasked_frame_bytes_are_identical(
    payload: bytes, opcode: Opcode, wop: WOpcode, fin: bool
) -> None:
    ours = serialize_frame(opcode, payload, fin=fin)
    theirs = Frame(wop, payload, fin=fin).serialize(mask=False)
    assert ours == theirs


def test_control_frame_bytes_are_identical() -> None:
    assert serialize_frame(Opcode.PING, b"abc") == Frame(WOpcode.PING, b"abc").serialize(mask=False)
    close = Close(4001, "why").serialize()
    assert serialize_frame(Opcode.CLOSE, close) == Frame(WOpcode.CLOSE, close).serialize(mask=False)


def server_side(deflate: bool) -> ServerProtocol:
    extensions = [ServerPerMessageDeflateFactory()] if deflate else None
    return ServerProtocol(extensions=extensions, subprotocols=["chat"], max_size=None)


@pytest.mark.parametrize("deflate", [False, True])
def test_our_client_against_their_server(deflate: bool) -> None:
    peer = server_side(deflate)
    hs = ClientHandshake(subprotocols=("chat",), deflate=DeflateSettings() if deflate else None)
    h1 = http1.Connection(http1.Role.CLIENT)
    peer.receive_data(h1.send(hs.request(b"/", b"localhost")) + h1.send(http1.EndOfMessage()))
    [request] = peer.events_received()
    assert isinstance(request, WRequest)
    peer.send_response(peer.accept(request))
    h1.receive_data(peer.data_to_send()[0])
    response = h1.next_event()
    assert isinstance(response, http1.InformationalResponse)
    accepted = hs.check_response(response)
    assert accepted.subprotocol == "chat" and (accepted.deflate is not None) == deflate
    conn = Connection(Role.CLIENT, deflate=accepted.deflate)
    assert h1.trailing_data == (b"", False)  # (b"" would mean the end of the stream)

    big = "é" * 40_000
    peer.receive_data(
        conn.send_text("hello")
        + conn.send_bytes(b"\x00" * 70_000)
        + conn.send_text(big[:100], fin=False)
        + conn.send_ping(b"p")
        + conn.send_text(big[100:])
    )
    frames = peer.events_received()
    got = [(f.opcode, f.data, f.fin) for f in frames]
    assert got[0] == (WOpcode.TEXT, b"hello", True)
    assert got[1] == (WOpcode.BINARY, b"\x00" * 70_000, True)
    assert got[3][0] == WOpcode.PING
    assert got[2][1] + got[4][1] == big.encode() and got[4][0] == WOpcode.CONT

    peer.send_text(b"from them")
    peer.send_binary(os.urandom(3) * 30_000)
    peer.send_text(b"frag", fin=False)
    peer.send_ping(b"q")
    peer.send_continuation(b"ment", fin=True)
    for chunk in peer.data_to_send():
        conn.receive_data(chunk)
    events = list(conn.events())
    assert events[:2] == [Pong(b"p"), TextMessage("from them")]  # websockets answered our ping
    assert isinstance(events[2], BytesMessage) and len(events[2].data) == 90_000
    assert events[3:] == [Ping(b"q"), TextMessage("fragment")]

    peer.send_close(1001, "bye")
    for chunk in peer.data_to_send():
        conn.receive_data(chunk)
    assert list(conn.events()) == [CloseReceived(1001, "bye")]
    pong_and_echo = conn.data_to_send()
    peer.receive_data(pong_and_echo)
    kinds = [f.opcode for f in peer.events_received()]
    assert kinds == [WOpcode.PONG, WOpcode.CLOSE]
    assert peer.close_rcvd is not None and peer.close_rcvd.code == 1001


@pytest.mark.parametrize(
    "factory",
    [
        None,
        ClientPerMessageDeflateFactory(),
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=10, client_max_window_bits=9,
        ),
    ],
)  # fmt: skip
def test_their_client_against_our_server(factory: ClientPerMessageDeflateFactory | None) -> None:
    peer = ClientProtocol(
        parse_uri("ws://localhost/chat"),
        extensions=[factory] if factory else None,
        subprotocols=["other", "chat"],
        max_size=None,
    )
    peer.send_request(peer.connect())
    h1 = http1.Connection(http1.Role.SERVER)
    h1.receive_data(peer.data_to_send()[0])
    request = h1.next_event()
    assert isinstance(request, http1.Request)
    assert isinstance(h1.next_event(), http1.EndOfMessage)
    upgrade = read_upgrade_request(request)
    assert upgrade.subprotocols == ["other", "chat"]
    accepted = accept(upgrade, subprotocol="chat", deflate=DeflateSettings())
    peer.receive_data(h1.send(accepted.response()))
    [_response] = peer.events_received()
    assert peer.subprotocol == "chat"
    assert bool(peer.extensions) == (factory is not None)
    conn = Connection(Role.SERVER, deflate=accepted.deflate)

    for _ in range(2):  # twice: context takeover, when on, is exercised
        peer.send_text("κόσμε".encode() * 1000)
        peer.send_binary(b"", fin=False)
        peer.send_continuation(b"\x01\x02", fin=True)
        peer.send_ping(b"hb")
        for chunk in peer.data_to_send():
            conn.receive_data(chunk)
        assert list(conn.events()) == [
            TextMessage("κόσμε" * 1000),
            BytesMessage(b"\x01\x02"),
            Ping(b"hb"),
        ]
        peer.receive_data(conn.data_to_send() + conn.send_text("ab" * 5000) + conn.send_bytes(b"z"))
        frames = peer.events_received()
        assert [(f.opcode, f.data) for f in frames] == [
            (WOpcode.PONG, b"hb"),
            (WOpcode.TEXT, b"ab" * 5000),
            (WOpcode.BINARY, b"z"),
        ]

    peer.receive_data(conn.send_close(1000, "done"))
    peer.events_received()
    for chunk in peer.data_to_send():
        if chunk:
            conn.receive_data(chunk)
    assert list(conn.events()) == [CloseReceived(1000, "done")]
    assert peer.close_rcvd is not None and peer.close_rcvd.code == 1000


def test_their_client_sees_our_1009_and_1007() -> None:
    peer = ClientProtocol(parse_uri("ws://localhost/"), max_size=None)
    peer.send_request(peer.connect())
    h1 = http1.Connection(http1.Role.SERVER)
    h1.receive_data(peer.data_to_send()[0])
    request = h1.next_event()
    assert isinstance(request, http1.Request)
    h1.next_event()
    peer.receive_data(h1.send(accept(read_upgrade_request(request)).response()))
    peer.events_received()
    from kakehashi.errors import RemoteWebSocketError
    from kakehashi.websocket import Limits

    conn = Connection(Role.SERVER, limits=Limits(max_message_bytes=1000))
    peer.send_binary(bytes(1001))
    for chunk in peer.data_to_send():
        conn.receive_data(chunk)
    with pytest.raises(RemoteWebSocketError):
        conn.next_event()
    peer.receive_data(conn.data_to_send())
    peer.events_received()
    assert peer.close_rcvd is not None and peer.close_rcvd.code == 1009
