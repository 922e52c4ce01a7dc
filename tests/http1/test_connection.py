"""Connection in both roles: cycles, pipelining, keep-alive, 1xx, HEAD/204/304, EOF, misuse."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import LocalProtocolError, RemoteProtocolError

H = http1.Headers
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def server(data: bytes = b"") -> http1.Connection:
    conn = http1.Connection(http1.Role.SERVER)
    if data:
        conn.receive_data(data)
    return conn


def events(conn: http1.Connection) -> list[object]:
    out: list[object] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if isinstance(event, http1.Signal | http1.EndOfMessage | http1.ConnectionClosed):
            return out


def client_sent(request: http1.Request) -> tuple[http1.Connection, bytes]:
    conn = http1.Connection(http1.Role.CLIENT)
    return conn, conn.send(request) + conn.send(http1.EndOfMessage())


# --- server ---------------------------------------------------------------------------------


def test_server_needs_data_until_the_head_is_complete() -> None:
    conn = server(GET[:-1])
    assert conn.next_event() is http1.NEED_DATA
    conn.receive_data(GET[-1:])
    assert isinstance(conn.next_event(), http1.Request)
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    assert conn.next_event() is http1.PAUSED


def test_keep_alive_cycle_and_pipelining() -> None:
    conn = server(GET + b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
    assert [type(e) for e in events(conn)] == [http1.Request, http1.EndOfMessage]
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()  # our response is not sent yet
    conn.send(http1.Response(200, H([(b"Content-Length", b"0")])))
    conn.send(http1.EndOfMessage())
    assert conn.is_reusable
    conn.start_next_cycle()
    evs = events(conn)
    assert isinstance(evs[0], http1.Request) and evs[0].target == b"/p"
    assert evs[1] == http1.Data(b"hi")


def test_http10_response_without_length_is_close_delimited() -> None:
    conn = server(b"GET / HTTP/1.0\r\n\r\n")
    events(conn)
    head = conn.send(http1.Response(200))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in head and b"Transfer-Encoding" not in head
    assert conn.send(http1.Data(b"raw body")) == b"raw body"
    assert conn.send(http1.EndOfMessage()) == b""
    assert conn.our_state is http1.State.MUST_CLOSE
    assert not conn.is_reusable


def test_http10_keep_alive_with_length() -> None:
    conn = server(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    events(conn)
    head = conn.send(http1.Response(200, H([(b"Content-Length", b"1")])))
    assert b"Connection: keep-alive\r\n" in head
    conn.send(http1.Data(b"x"))
    conn.send(http1.EndOfMessage())
    assert conn.is_reusable


def test_connection_close_from_the_application() -> None:
    conn = server(GET)
    events(conn)
    head = conn.send(http1.Response(200, H([(b"Connection", b"close"), (b"Content-Length", b"0")])))
    assert head.count(b"Connection") == 1
    conn.send(http1.EndOfMessage())
    assert not conn.is_reusable


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
        (GET, 204),
        (GET, 304),
    ],
)
def test_no_body_responses(raw: bytes, status: int) -> None:
    conn = server(raw)
    events(conn)
    head = conn.send(http1.Response(status, H([(b"Content-Length", b"5")])))
    assert b"Transfer-Encoding" not in head
    assert (b"Content-Length: 5" in head) == (status != 204)
    assert conn.send(http1.Data(b"")) == b""
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Data(b"x"))


def test_expect_continue_and_informational_responses() -> None:
    conn = server(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, http1.Request) and request.expect_continue
    assert conn.next_event() is http1.NEED_DATA
    assert conn.send(http1.InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.receive_data(b"x")
    assert events(conn)[0] == http1.Data(b"x")
    conn.send(http1.Response(200, H([(b"Content-Length", b"0")])))
    with pytest.raises(LocalProtocolError):  # too late for a 1xx
        conn.send(http1.InformationalResponse(103))


@pytest.mark.parametrize("status", [99, 200])
def test_informational_status_range(status: int) -> None:
    conn = server(GET)
    events(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(http1.InformationalResponse(status))


def test_final_response_cannot_be_1xx() -> None:
    conn = server(GET)
    events(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(101))
    assert conn.our_state is http1.State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(200))


def test_error_response_after_a_protocol_error() -> None:
    conn = server(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert conn.their_state is http1.State.ERROR
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    head = conn.send(http1.Response(info.value.status_hint, H([(b"Content-Length", b"0")])))
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in head
    assert conn.send(http1.EndOfMessage()) == b""
    assert not conn.is_reusable
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(400))  # only once


def test_no_1xx_after_a_protocol_error() -> None:
    conn = server(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(http1.InformationalResponse(100))


def test_response_needs_a_request() -> None:
    with pytest.raises(LocalProtocolError):
        server().send(http1.Response(200))
    with pytest.raises(LocalProtocolError):
        server().send(http1.InformationalResponse(100))


def test_body_length_enforced_when_sending() -> None:
    conn = server(GET)
    events(conn)
    conn.send(http1.Response(200, H([(b"Content-Length", b"3")])))
    assert conn.send(http1.Data(b"ab")) == b"ab"
    with pytest.raises(LocalProtocolError):
        conn.send(http1.EndOfMessage())  # one byte short
    conn = server(GET)
    events(conn)
    conn.send(http1.Response(200, H([(b"Content-Length", b"1")])))
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Data(b"ab"))


@pytest.mark.parametrize("value", [b"a\r\nb", b"a\nb", b"a\x00b", b" lead"])
def test_illegal_header_value_never_reaches_the_wire(value: bytes) -> None:
    conn = server(GET)
    events(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(200, H([(b"X-Bad", value)])))


def test_chunked_response_with_trailers() -> None:
    conn = server(GET)
    events(conn)
    conn.send(http1.Response(200))
    assert conn.send(http1.Data(b"")) == b""
    out = conn.send(http1.EndOfMessage(H([(b"X-Sum", b"1")])))
    assert out == b"0\r\nX-Sum: 1\r\n\r\n"


def test_trailers_need_chunked() -> None:
    conn = server(GET)
    events(conn)
    conn.send(http1.Response(200, H([(b"Content-Length", b"0")])))
    with pytest.raises(LocalProtocolError):
        conn.send(http1.EndOfMessage(H([(b"X-Sum", b"1")])))


def test_data_without_a_body_in_progress() -> None:
    with pytest.raises(LocalProtocolError):
        server(GET).send(http1.Data(b"x"))
    with pytest.raises(LocalProtocolError):
        server().send(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))


def test_eof_between_messages_and_in_the_middle() -> None:
    conn = server()
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), http1.ConnectionClosed)
    assert isinstance(conn.next_event(), http1.ConnectionClosed)
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"late")
    conn = server(b"GET / HT")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    conn = server(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        events(conn)


def test_eof_after_a_finished_request() -> None:
    conn = server(GET)
    events(conn)
    conn.receive_data(b"")
    assert conn.trailing_data == (b"", True)
    assert isinstance(conn.next_event(), http1.ConnectionClosed)
    assert conn.their_state is http1.State.CLOSED


def test_cannot_reuse_a_connection_in_error() -> None:
    conn = server(GET)
    events(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(200, H([(b"X", b"\n")])))
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(200))


# --- client ---------------------------------------------------------------------------------


def test_client_round_trip_with_length() -> None:
    conn, wire = client_sent(http1.Request(b"GET", b"/x", H([(b"Host", b"a")])))
    assert wire == b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    assert conn.next_event() is http1.NEED_DATA
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    response = conn.next_event()
    assert isinstance(response, http1.Response)
    assert (response.status_code, response.reason, response.content_length) == (200, b"OK", 3)
    assert conn.next_event() == http1.Data(b"abc")
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    assert conn.is_reusable
    conn.start_next_cycle()
    assert conn.next_event() is http1.PAUSED  # nothing is expected before we send a request


def test_client_informational_then_chunked() -> None:
    conn = http1.Connection(http1.Role.CLIENT)
    conn.send(
        http1.Request(
            b"POST",
            b"/",
            H([(b"Host", b"a"), (b"Transfer-Encoding", b"chunked"), (b"Expect", b"100-continue")]),
        )
    )
    conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    info = conn.next_event()
    assert isinstance(info, http1.InformationalResponse) and info.status_code == 100
    assert conn.send(http1.Data(b"abc")) == b"3\r\nabc\r\n"
    assert conn.send(http1.EndOfMessage()) == b"0\r\n\r\n"
    conn.receive_data(
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    assert [type(e) for e in events(conn)] == [http1.Response, http1.Data, http1.EndOfMessage]


def test_client_close_delimited_response() -> None:
    conn, _ = client_sent(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))
    conn.receive_data(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    response = conn.next_event()
    assert isinstance(response, http1.Response) and response.framing is http1.Framing.CLOSE
    assert conn.next_event() == http1.Data(b"all of it")
    assert conn.next_event() is http1.NEED_DATA
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    assert not conn.is_reusable
    assert isinstance(conn.next_event(), http1.ConnectionClosed)


@pytest.mark.parametrize(
    ("method", "status_line"),
    [
        (b"HEAD", b"HTTP/1.1 200 OK"),
        (b"GET", b"HTTP/1.1 204 No Content"),
        (b"GET", b"HTTP/1.1 304 X"),
    ],
)
def test_client_no_body_responses(method: bytes, status_line: bytes) -> None:
    conn, _ = client_sent(http1.Request(method, b"/", H([(b"Host", b"a")])))
    conn.receive_data(status_line + b"\r\nContent-Length: 10\r\n\r\n")
    response = conn.next_event()
    assert isinstance(response, http1.Response) and response.framing is http1.Framing.NONE
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    assert conn.is_reusable


def test_client_connect_tunnel_is_not_reusable() -> None:
    conn, _ = client_sent(http1.Request(b"CONNECT", b"a:443", H([(b"Host", b"a:443")])))
    conn.receive_data(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03")
    assert isinstance(conn.next_event(), http1.Response)
    assert isinstance(conn.next_event(), http1.EndOfMessage)
    assert not conn.is_reusable
    assert conn.trailing_data == (b"\x16\x03", False)


def test_client_eof_mid_response() -> None:
    conn, _ = client_sent(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        events(conn)
    conn, _ = client_sent(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))
    conn.receive_data(b"HTTP/1.1 200")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_client_connection_close_requested() -> None:
    conn, _ = client_sent(
        http1.Request(b"GET", b"/", H([(b"Host", b"a"), (b"Connection", b"Close")]))
    )
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    events(conn)
    assert not conn.is_reusable


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no Host
        [(b"Host", b"a"), (b"Content-Length", b"x")],
        [(b"Host", b"a"), (b"Transfer-Encoding", b"gzip")],
        [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"1")],
    ],
)
def test_client_refuses_to_send_bad_requests(headers: list[tuple[bytes, bytes]]) -> None:
    conn = http1.Connection(http1.Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Request(b"POST", b"/", H(headers)))


def test_client_body_by_length_and_misuse() -> None:
    conn = http1.Connection(http1.Role.CLIENT)
    conn.send(http1.Request(b"POST", b"/", H([(b"Host", b"a"), (b"Content-Length", b"2")])))
    assert conn.send(http1.Data(b"ok")) == b"ok"
    assert conn.send(http1.EndOfMessage()) == b""
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Response(200))
    with pytest.raises(LocalProtocolError):
        http1.Connection(http1.Role.CLIENT).send(http1.InformationalResponse(100))


def test_client_bad_response_is_remote_error() -> None:
    conn, _ = client_sent(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))
    conn.receive_data(b"HTTP/1.1 099 Nope\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


@pytest.mark.parametrize("size_line", [b"5 \r\n", b"5\t\r\n", b"5;a=b \r\n"])
def test_client_refuses_whitespace_after_a_chunk_size(size_line: bytes) -> None:
    # The client reads chunked responses with the server's reader: the same grammar holds.
    conn, _ = client_sent(http1.Request(b"GET", b"/", H([(b"Host", b"a")])))
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line)
    conn.receive_data(b"hello\r\n0\r\n\r\n")
    assert isinstance(conn.next_event(), http1.Response)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
