"""The switched-protocol state: after a 101 to an Upgrade request, the bytes are handed on."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import LocalProtocolError, RemoteProtocolError

H = http1.Headers
S = http1.State
UPGRADE = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
SWITCH = H([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])
RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
)


def server_after(data: bytes) -> http1.Connection:
    conn = http1.Connection(http1.Role.SERVER)
    conn.receive_data(data)
    assert isinstance(conn.next_event(), http1.Request)
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    return conn


def test_server_switches_and_hands_on_the_bytes_after_the_request() -> None:
    conn = server_after(UPGRADE + b"\x81\x85frame")
    # Before the 101 the next bytes are not parsed as another request.
    assert conn.next_event() is http1.PAUSED
    head = conn.send(http1.InformationalResponse(101, SWITCH))
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert conn.our_state is S.SWITCHED_PROTOCOL and conn.their_state is S.SWITCHED_PROTOCOL
    assert conn.trailing_data == (b"\x81\x85frame", False)
    conn.receive_data(b"more")
    conn.receive_data(b"")
    assert conn.next_event() is http1.PAUSED  # never ConnectionClosed: not HTTP any more
    assert conn.trailing_data == (b"\x81\x85framemore", True)
    assert not conn.is_reusable
    for event in (http1.Response(200), http1.Data(b"x"), http1.EndOfMessage()):
        with pytest.raises(LocalProtocolError):
            conn.send(event)


def test_server_refusing_the_upgrade_stays_http() -> None:
    conn = server_after(UPGRADE + GET_NEXT)
    conn.send(http1.Response(400, H([(b"Content-Length", b"0")])))
    conn.send(http1.EndOfMessage())
    conn.start_next_cycle()
    request = conn.next_event()
    assert isinstance(request, http1.Request) and request.target == b"/next"


GET_NEXT = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"


def test_server_101_needs_an_upgrade_request() -> None:
    conn = server_after(GET_NEXT)
    with pytest.raises(LocalProtocolError, match="did not ask"):
        conn.send(http1.InformationalResponse(101, SWITCH))
    assert conn.our_state is S.ERROR


def test_server_101_must_name_the_protocol() -> None:
    conn = server_after(UPGRADE)
    with pytest.raises(LocalProtocolError, match="Upgrade"):
        conn.send(http1.InformationalResponse(101))


def test_server_101_needs_the_whole_request() -> None:
    conn = http1.Connection(http1.Role.SERVER)
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n"
        b"Content-Length: 4\r\n\r\nab"
    )
    assert isinstance(conn.next_event(), http1.Request)
    assert conn.next_event() == http1.Data(b"ab")
    with pytest.raises(LocalProtocolError, match="complete"):
        conn.send(http1.InformationalResponse(101, SWITCH))


def test_server_ignores_upgrade_in_http10() -> None:
    conn = server_after(b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    with pytest.raises(LocalProtocolError, match=r"HTTP/1\.1"):
        conn.send(http1.InformationalResponse(101, SWITCH))


def test_other_1xx_do_not_switch() -> None:
    conn = server_after(UPGRADE)
    conn.send(http1.InformationalResponse(100))
    assert conn.our_state is S.IDLE and conn.their_state is S.DONE


def client_sent(headers: list[tuple[bytes, bytes]]) -> http1.Connection:
    conn = http1.Connection(http1.Role.CLIENT)
    conn.send(http1.Request(b"GET", b"/chat", H([(b"Host", b"a"), *headers])))
    conn.send(http1.EndOfMessage())
    return conn


def test_client_switches_on_101_and_keeps_the_following_bytes() -> None:
    conn = client_sent([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])
    conn.receive_data(RESPONSE_101[:20])
    assert conn.next_event() is http1.NEED_DATA
    conn.receive_data(RESPONSE_101[20:] + b"\x81\x05Hello")
    event = conn.next_event()
    assert isinstance(event, http1.InformationalResponse) and event.status_code == 101
    assert event.headers.get(b"upgrade") == b"websocket"
    assert conn.our_state is S.SWITCHED_PROTOCOL and conn.their_state is S.SWITCHED_PROTOCOL
    assert conn.next_event() is http1.PAUSED
    assert conn.trailing_data == (b"\x81\x05Hello", False)


def test_client_refuses_a_101_it_did_not_ask_for() -> None:
    conn = client_sent([])
    conn.receive_data(RESPONSE_101)
    with pytest.raises(RemoteProtocolError, match="did not ask"):
        conn.next_event()
    assert conn.their_state is S.ERROR


def test_client_refused_upgrade_reads_the_final_response() -> None:
    conn = client_sent([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])
    conn.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    event = conn.next_event()
    assert isinstance(event, http1.Response) and event.status_code == 403
    assert conn.next_event() == http1.Data(b"no")
    assert conn.our_state is S.DONE
