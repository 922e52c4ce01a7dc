"""The websocket cycle, without a loop: a test per rule of asgiref's www.rst, "WebSocket"."""

from __future__ import annotations

from typing import Any

import pytest

from kakehashi.asgi import (
    WS_EXTENSIONS,
    FieldCache,
    ScopeBuilder,
    WebSocketCycle,
    WSPhase,
    websocket_scope,
)
from kakehashi.errors import ClientDisconnected, LocalProtocolError, RemoteWebSocketError
from kakehashi.http1 import Role
from kakehashi.websocket import (
    BytesMessage,
    CloseReceived,
    Connection,
    DeflateSettings,
    Limits,
    Ping,
    TextMessage,
    UpgradeRequest,
    accept_key,
    read_upgrade_request,
)
from tests.asgi.helpers import request

DATE = b"Tue, 01 Dec 2026 00:00:00 GMT"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def upgrade(extra: bytes = b"", target: bytes = b"/chat?room=1") -> UpgradeRequest:
    raw = (
        b"GET " + target + b" HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )
    return read_upgrade_request(request(raw))


def cycle(
    extra: bytes = b"", deflate: DeflateSettings | None = None, limit: int = 1 << 20
) -> WebSocketCycle:
    return WebSocketCycle(
        upgrade(extra), FieldCache(), DATE, limits=Limits(max_message_bytes=limit), deflate=deflate
    )


def opened(extra: bytes = b"", **accept: Any) -> WebSocketCycle:
    c = cycle(extra)
    c.send({"type": "websocket.accept", **accept})
    return c


def client() -> Connection:
    return Connection(Role.CLIENT, mask_key=lambda: b"\x01\x02\x03\x04")


def events_of(c: WebSocketCycle, data: bytes) -> list[Any]:
    c.receive_data(data)
    out = []
    while (event := c.next_event()) is not None:
        out.append(event)
    return out


def peer_sees(data: bytes) -> list[Any]:
    """What a client makes of the bytes the server sent (after the handshake)."""
    peer = Connection(Role.CLIENT)
    peer.receive_data(data)
    return list(peer.events())


# -- the scope ---------------------------------------------------------------------------------


def test_scope_has_every_key_of_the_spec() -> None:
    up = upgrade(b"Sec-WebSocket-Protocol: chat, superchat\r\n")
    builder = ScopeBuilder(("127.0.0.1", 8000), "", {"http.response.trailers": {}})
    scope = websocket_scope(builder.build(up.request, ("10.0.0.1", 5), "http", {"a": 1}), up)
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat" and scope["raw_path"] == b"/chat"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["extensions"] == WS_EXTENSIONS == {"websocket.http.response": {}}
    assert "method" not in scope
    assert scope["http_version"] == "1.1"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["client"] == ("10.0.0.1", 5) and scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"a": 1}
    assert (b"upgrade", b"websocket") in scope["headers"]


def test_scope_over_tls_is_wss_and_keeps_the_tls_extension() -> None:
    up = upgrade()
    builder = ScopeBuilder(("127.0.0.1", 8443), "", {})
    scope = websocket_scope(builder.build(up.request, None, "https", {}, {"tls_version": 1}), up)
    assert scope["scheme"] == "wss"
    assert scope["extensions"]["tls"] == {"tls_version": 1}


# -- answering the connect -----------------------------------------------------------------


def test_accept_writes_the_101_with_subprotocol_and_headers() -> None:
    c = cycle(b"Sec-WebSocket-Protocol: chat, superchat\r\n")
    out = c.send({"type": "websocket.accept", "subprotocol": "superchat",
                  "headers": [(b"X-Id", b"7")]})  # fmt: skip
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: " + accept_key(KEY) + b"\r\n" in out
    assert b"Sec-WebSocket-Protocol: superchat\r\n" in out
    assert b"X-Id: 7\r\n" in out
    assert out.endswith(b"\r\n\r\n")
    assert c.phase is WSPhase.OPEN and c.status == 101


def test_accept_refuses_a_subprotocol_not_offered_and_handshake_fields() -> None:
    with pytest.raises(LocalProtocolError, match="not offered"):
        cycle().send({"type": "websocket.accept", "subprotocol": "chat"})
    with pytest.raises(LocalProtocolError, match="set by the handshake"):
        cycle().send({"type": "websocket.accept", "headers": [(b"upgrade", b"x")]})
    with pytest.raises(LocalProtocolError, match="bytes"):
        cycle().send({"type": "websocket.accept", "headers": [("x", "y")]})
    with pytest.raises(LocalProtocolError, match="iterable"):
        cycle().send({"type": "websocket.accept", "headers": 5})
    with pytest.raises(LocalProtocolError, match="str or None"):
        cycle().send({"type": "websocket.accept", "subprotocol": b"chat"})


def test_accept_negotiates_permessage_deflate_only_when_allowed() -> None:
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    on = cycle(offer, deflate=DeflateSettings())
    assert b"permessage-deflate" in on.send({"type": "websocket.accept"})
    assert on.accepted is not None and on.accepted.deflate is not None
    off = cycle(offer, deflate=None)  # the engine's budget is spent
    assert b"permessage-deflate" not in off.send({"type": "websocket.accept"})


def test_close_before_accept_is_a_403() -> None:
    c = cycle()
    out = c.send({"type": "websocket.close", "code": 4000})
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert c.phase is WSPhase.CLOSED and c.status == 403


def test_a_denial_with_any_status_and_body() -> None:
    c = cycle()
    start = {"type": "websocket.http.response.start", "status": 401,
             "headers": [(b"www-authenticate", b"Bearer")]}  # fmt: skip
    assert c.send(start) == b""
    assert c.phase is WSPhase.DENYING
    out = c.send({"type": "websocket.http.response.body", "body": b"who", "more_body": True})
    out += c.send({"type": "websocket.http.response.body", "body": b" are you"})
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"www-authenticate: Bearer" in head
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"who" in body and b" are you" in body
    assert c.phase is WSPhase.CLOSED and c.status == 401


def test_a_denial_cannot_follow_an_accept_nor_carry_trailers() -> None:
    with pytest.raises(LocalProtocolError, match="open"):
        opened().send({"type": "websocket.http.response.start", "status": 403})
    with pytest.raises(LocalProtocolError, match="trailers"):
        cycle().send({"type": "websocket.http.response.start", "status": 403, "trailers": True})


def test_nothing_but_an_answer_before_the_accept() -> None:
    with pytest.raises(LocalProtocolError, match="connecting"):
        cycle().send({"type": "websocket.send", "text": "hi"})


def test_invalid_messages_raise_and_extra_keys_do_not() -> None:
    with pytest.raises(LocalProtocolError, match="'type'"):
        cycle().send({"text": "no type"})
    with pytest.raises(LocalProtocolError, match="unexpected"):
        cycle().send({"type": "http.response.start"})
    c = opened()
    with pytest.raises(LocalProtocolError, match="exactly one"):
        c.send({"type": "websocket.send"})
    with pytest.raises(LocalProtocolError, match="exactly one"):
        c.send({"type": "websocket.send", "text": "a", "bytes": b"b"})
    with pytest.raises(LocalProtocolError, match="'text' must be a str"):
        c.send({"type": "websocket.send", "text": b"a"})
    with pytest.raises(LocalProtocolError, match="'bytes' must be bytes"):
        c.send({"type": "websocket.send", "bytes": "a"})
    assert c.send({"type": "websocket.send", "text": "a", "bytes": None, "x-extra": 1})


# -- messages both ways --------------------------------------------------------------------


def test_send_text_and_bytes() -> None:
    c = opened()
    out = c.send({"type": "websocket.send", "text": "héllo"})
    out += c.send({"type": "websocket.send", "bytes": b"\x00\x01", "text": None})
    assert peer_sees(out) == [TextMessage("héllo"), BytesMessage(b"\x00\x01")]


def test_receive_text_and_bytes_as_asgi_messages() -> None:
    c = opened()
    peer = client()
    data = peer.send_text("hi") + peer.send_bytes(b"\xff", fin=False) + peer.send_bytes(b"!")
    events = events_of(c, data)
    assert [c.message(e) for e in events] == [
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.receive", "bytes": b"\xff!"},  # fragments reassembled
    ]


def test_pings_are_answered_by_the_core() -> None:
    c = opened()
    assert events_of(c, client().send_ping(b"p")) == [Ping(b"p")]
    assert peer_sees(c.data_to_send())[0].payload == b"p"


def test_close_defaults_to_1000_and_carries_code_and_reason() -> None:
    c = opened()
    assert peer_sees(c.send({"type": "websocket.close"})) == [CloseReceived(1000, "")]
    c = opened()
    out = c.send({"type": "websocket.close", "code": 4001, "reason": "bye"})
    assert peer_sees(out) == [CloseReceived(4001, "bye")]
    assert c.phase is WSPhase.CLOSING and c.close_code == 4001
    c = opened()
    assert peer_sees(c.send({"type": "websocket.close", "reason": None})) == [CloseReceived(1000)]


def test_close_with_a_code_not_for_the_wire_raises() -> None:
    with pytest.raises(LocalProtocolError, match=r"websocket\.close"):
        opened().send({"type": "websocket.close", "code": 1005})
    with pytest.raises(LocalProtocolError, match="'code' must be an int"):
        opened().send({"type": "websocket.close", "code": "1000"})
    with pytest.raises(LocalProtocolError, match="'reason' must be a str"):
        opened().send({"type": "websocket.close", "reason": b"x"})


def test_disconnect_carries_the_peers_code_and_reason_1005_if_none() -> None:
    c = opened()
    (event,) = events_of(c, client().send_close(4002, "done"))
    assert event == CloseReceived(4002, "done")
    assert c.ended(event.code, event.reason) == {
        "type": "websocket.disconnect", "code": 4002, "reason": "done"
    }  # fmt: skip
    assert peer_sees(c.data_to_send()) == [CloseReceived(4002, "")]  # the echo
    c = opened()
    (event,) = events_of(c, client().send_close(None))
    assert event.code == 1005


def test_send_after_the_peer_closed_raises_an_oserror() -> None:
    c = opened()
    (event,) = events_of(c, client().send_close(1000))
    c.ended(event.code)
    with pytest.raises(ClientDisconnected) as caught:
        c.send({"type": "websocket.send", "text": "late"})
    assert isinstance(caught.value, OSError)


def test_send_after_the_application_closed_is_its_bug() -> None:
    c = opened()
    c.send({"type": "websocket.close"})
    with pytest.raises(LocalProtocolError, match="closing"):
        c.send({"type": "websocket.send", "text": "late"})


def test_a_protocol_error_closes_with_its_code() -> None:
    c = opened()
    bad = Connection(Role.SERVER).send_text("unmasked")  # a client must mask
    with pytest.raises(RemoteWebSocketError):
        events_of(c, bad)
    assert c.phase is WSPhase.CLOSED and c.close_code == 1002
    assert peer_sees(c.data_to_send())[0].code == 1002


def test_a_message_over_the_limit_is_1009() -> None:
    c = WebSocketCycle(upgrade(), FieldCache(), DATE, limits=Limits(10), deflate=None)
    c.send({"type": "websocket.accept"})
    with pytest.raises(RemoteWebSocketError) as caught:
        events_of(c, client().send_bytes(b"x" * 11))
    assert caught.value.close_code == 1009 == c.close_code


# -- the application ends ------------------------------------------------------------------


@pytest.mark.parametrize(("failed", "status"), [(False, 403), (True, 500)])
def test_ending_before_accepting_is_a_refusal(failed: bool, status: int) -> None:
    c = cycle()
    out = c.app_ended(failed)
    assert out is not None and out.startswith(b"HTTP/1.1 %d " % status)
    assert c.status == status and c.phase is WSPhase.CLOSED


@pytest.mark.parametrize(("failed", "code"), [(False, 1000), (True, 1011)])
def test_ending_after_accepting_closes_with_1000_or_1011(failed: bool, code: int) -> None:
    c = opened()
    out = c.app_ended(failed)
    assert out is not None and peer_sees(out) == [CloseReceived(code, "")]
    assert c.app_ended(False) == b""  # already closing: nothing more


def test_ending_during_a_denial_cuts_or_refuses() -> None:
    c = cycle()
    c.send({"type": "websocket.http.response.start", "status": 404})
    out = c.app_ended(False)  # nothing went out yet: a 500 can still be said
    assert out is not None and out.startswith(b"HTTP/1.1 500 ")
    c = cycle()
    c.send({"type": "websocket.http.response.start", "status": 404})
    c.send({"type": "websocket.http.response.body", "body": b"x", "more_body": True})
    assert c.denial_started
    assert c.app_ended(False) is None  # the engine cuts the connection


def test_ping_only_while_open() -> None:
    assert cycle().ping(b"x") == b""
    c = opened()
    assert peer_sees(c.ping(b"x"))[0].payload == b"x"
