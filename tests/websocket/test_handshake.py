"""The opening handshake on http1's parsed requests: checks, refusals, the client's side."""

from __future__ import annotations

import base64

import pytest

from kakehashi import http1
from kakehashi.errors import HandshakeError, LocalWebSocketError
from kakehashi.websocket import (
    ClientHandshake,
    DeflateSettings,
    accept,
    accept_key,
    is_websocket_request,
    parse_extensions,
    read_upgrade_request,
    refusal,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
BASE = [
    (b"Host", b"example.com"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"keep-alive, Upgrade"),
    (b"Sec-WebSocket-Key", KEY),
    (b"Sec-WebSocket-Version", b"13"),
]


def parsed(
    fields: list[tuple[bytes, bytes]], start: bytes = b"GET /chat HTTP/1.1"
) -> http1.Request:
    """A request as the server's parser produces it."""
    head = start + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
    result = http1.maybe_parse_request_head(head, 0, http1.DEFAULT_LIMITS)
    assert result is not None
    return result[0]


def replace(name: bytes, value: bytes | None) -> list[tuple[bytes, bytes]]:
    out = [(n, v) for n, v in BASE if n.lower() != name.lower()]
    return out if value is None else [*out, (name, value)]


def test_rfc6455_accept_key() -> None:
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_valid_request_is_accepted() -> None:
    request = parsed([*BASE, (b"Sec-WebSocket-Protocol", b"chat, superchat")])
    assert is_websocket_request(request)
    upgrade = read_upgrade_request(request)
    assert upgrade.key == KEY and upgrade.subprotocols == ["chat", "superchat"]
    accepted = accept(upgrade, subprotocol="superchat", extra_headers=[(b"X-Id", b"7")])
    assert accepted.headers == [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        (b"Sec-WebSocket-Protocol", b"superchat"),
        (b"X-Id", b"7"),
    ]
    assert accepted.subprotocol == "superchat" and accepted.deflate is None
    head = http1.write_response_head(101, accepted.headers, None)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def test_header_tokens_are_case_insensitive() -> None:
    request = parsed([*replace(b"Upgrade", b"WebSocket"), (b"connection", b"UPGRADE")])
    assert read_upgrade_request(request).key == KEY


def test_other_upgrades_are_not_websocket() -> None:
    assert not is_websocket_request(parsed(replace(b"Upgrade", b"h2c")))
    assert not is_websocket_request(parsed([(b"Host", b"a")]))


@pytest.mark.parametrize(
    "fields, start, message",
    [
        (BASE, b"POST /chat HTTP/1.1", "must be a GET"),
        (replace(b"Host", None), b"GET /chat HTTP/1.0", "HTTP/1.1"),
        (replace(b"Upgrade", b"h2c"), b"GET / HTTP/1.1", "Upgrade: websocket"),
        (replace(b"Connection", b"keep-alive"), b"GET / HTTP/1.1", "Connection: upgrade"),
        (replace(b"Sec-WebSocket-Key", None), b"GET / HTTP/1.1", "Sec-WebSocket-Key"),
        (replace(b"Sec-WebSocket-Key", b"c2hvcnQ="), b"GET / HTTP/1.1", "16 bytes"),
        (replace(b"Sec-WebSocket-Key", b"!" * 24), b"GET / HTTP/1.1", "16 bytes"),
        ([*BASE, (b"Sec-WebSocket-Key", KEY)], b"GET / HTTP/1.1", "one base64"),
        ([*BASE, (b"Content-Length", b"3")], b"GET / HTTP/1.1", "body"),
        ([*BASE, (b"Sec-WebSocket-Protocol", b"a b")], b"GET / HTTP/1.1", "tokens"),
        ([*BASE, (b"Sec-WebSocket-Extensions", b"x; =1")], b"GET / HTTP/1.1", "extension"),
    ],
)
def test_bad_requests_are_refused_with_400(
    fields: list[tuple[bytes, bytes]], start: bytes, message: str
) -> None:
    with pytest.raises(HandshakeError, match=message) as info:
        read_upgrade_request(parsed(fields, start))
    assert info.value.status_hint == 400
    answer = refusal(info.value)
    assert answer.status_code == 400
    assert answer.body.endswith(b"\n") and message.encode() in answer.body
    assert (b"Content-Length", b"%d" % len(answer.body)) in answer.headers
    assert answer.response().status_code == 400


@pytest.mark.parametrize("version", [b"8", b"12", b"13, 8", b"", None])
def test_other_versions_get_426_naming_13(version: bytes | None) -> None:
    with pytest.raises(HandshakeError) as info:
        read_upgrade_request(parsed(replace(b"Sec-WebSocket-Version", version)))
    answer = refusal(info.value)
    assert answer.status_code == 426
    assert (b"Sec-WebSocket-Version", b"13") in answer.headers


def test_refusal_is_written_by_http1() -> None:
    conn = http1.Connection(http1.Role.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, http1.Request)
    conn.next_event()
    with pytest.raises(HandshakeError) as info:
        read_upgrade_request(request)
    answer = refusal(info.value)
    wire = conn.send(answer.response()) + conn.send(http1.Data(answer.body))
    wire += conn.send(http1.EndOfMessage())
    assert wire.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert wire.endswith(b"\r\n\r\nmissing Connection: upgrade\n")


def test_accept_refuses_what_the_handshake_owns() -> None:
    upgrade = read_upgrade_request(parsed([*BASE, (b"Sec-WebSocket-Protocol", b"chat")]))
    with pytest.raises(LocalWebSocketError, match="not offered"):
        accept(upgrade, subprotocol="other")
    for name in (b"Sec-WebSocket-Accept", b"upgrade", b"Connection", b"Sec-WebSocket-Extensions"):
        with pytest.raises(LocalWebSocketError, match="set by the handshake"):
            accept(upgrade, extra_headers=[(name, b"x")])
    with pytest.raises(LocalWebSocketError, match="set by the handshake"):
        accept(upgrade, subprotocol="chat", extra_headers=[(b"Sec-WebSocket-Protocol", b"x")])
    with pytest.raises(LocalWebSocketError, match="illegal header"):
        accept(upgrade, extra_headers=[(b"X-A", b"a\r\nb")])
    # Without a chosen subprotocol the application may set the field itself (as ASGI allows).
    assert (b"Sec-WebSocket-Protocol", b"chat") in accept(
        upgrade, extra_headers=[(b"Sec-WebSocket-Protocol", b"chat")]
    ).headers


def test_parse_extensions() -> None:
    values = [
        b"permessage-deflate; client_max_window_bits, "
        b'permessage-deflate; server_max_window_bits="10"',
        b" , x-foo ;a=1;B",
    ]
    assert parse_extensions(values) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("x-foo", [("a", "1"), ("b", None)]),
    ]
    for bad in (b"a;", b"a b", b'a; b="1 2"', b"a; b=", b'a; b="\\1"', b";"):
        with pytest.raises(ValueError):
            parse_extensions([bad])


# --- the client -------------------------------------------------------------------------------


def response(fields: list[tuple[bytes, bytes]], status: int = 101) -> http1.InformationalResponse:
    return http1.InformationalResponse(status, http1.Headers(fields))


def test_client_request_and_a_good_response() -> None:
    hs = ClientHandshake(subprotocols=("chat", "v2"), key=b"the sample nonce")
    assert hs.key == KEY
    request = hs.request(b"/chat", b"example.com", [(b"Origin", b"http://example.com")])
    assert request.method == b"GET" and request.target == b"/chat"
    assert request.headers.get(b"sec-websocket-protocol") == b"chat, v2"
    assert request.headers.get(b"origin") == b"http://example.com"
    # The server's own checks accept what the client builds.
    wire = http1.write_request_head(b"GET", b"/chat", request.headers.raw())
    got = http1.maybe_parse_request_head(wire, 0, http1.DEFAULT_LIMITS)
    assert got is not None
    upgrade = read_upgrade_request(got[0])
    accepted = accept(upgrade, subprotocol="v2")
    result = hs.check_response(accepted.response())
    assert result.subprotocol == "v2" and result.deflate is None


def test_client_random_key() -> None:
    a, b = ClientHandshake(), ClientHandshake()
    assert a.key != b.key and len(base64.b64decode(a.key)) == 16
    with pytest.raises(LocalWebSocketError):
        ClientHandshake(key=b"short")
    with pytest.raises(LocalWebSocketError):
        ClientHandshake(subprotocols=("a b",))


GOOD = [
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
]


@pytest.mark.parametrize(
    "fields, message",
    [
        ([GOOD[1], GOOD[2]], "Upgrade: websocket"),
        ([GOOD[0], GOOD[2]], "Connection: upgrade"),
        ([GOOD[0], GOOD[1]], "Sec-WebSocket-Accept"),
        ([GOOD[0], GOOD[1], (b"Sec-WebSocket-Accept", b"x")], "Sec-WebSocket-Accept"),
        ([*GOOD, (b"Sec-WebSocket-Protocol", b"other")], "not offered"),
        ([*GOOD, (b"Sec-WebSocket-Protocol", b"chat, chat")], "not offered"),
        ([*GOOD, (b"Sec-WebSocket-Extensions", b"permessage-deflate")], "not offered"),
        ([*GOOD, (b"Sec-WebSocket-Extensions", b"x;;")], "malformed"),
    ],
)
def test_client_refuses_bad_responses(fields: list[tuple[bytes, bytes]], message: str) -> None:
    hs = ClientHandshake(subprotocols=("chat",), key=b"the sample nonce")
    with pytest.raises(HandshakeError, match=message):
        hs.check_response(response(fields))


def test_client_refused_by_the_server() -> None:
    hs = ClientHandshake(key=b"the sample nonce")
    with pytest.raises(HandshakeError, match="403") as info:
        hs.check_response(http1.Response(403))
    assert info.value.status_hint == 403


def test_client_refuses_extensions_it_did_not_offer_even_with_deflate() -> None:
    hs = ClientHandshake(deflate=DeflateSettings(), key=b"the sample nonce")
    value = b"permessage-deflate, permessage-deflate"
    with pytest.raises(HandshakeError, match="not offered"):
        hs.check_response(response([*GOOD, (b"Sec-WebSocket-Extensions", value)]))
    with pytest.raises(HandshakeError, match="not offered"):
        hs.check_response(response([*GOOD, (b"Sec-WebSocket-Extensions", b"x-other")]))
