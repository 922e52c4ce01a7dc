"""A first round trip through the sans-I/O core; the full suite lives beside this file."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError


def test_request_round_trip_with_chunked_body_and_pipelined_next() -> None:
    conn = http1.Connection(http1.Role.SERVER)
    conn.receive_data(
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    request = conn.next_event()
    assert isinstance(request, http1.Request)
    assert (request.method, request.target, request.framing) == (
        b"POST",
        b"/up",
        http1.Framing.CHUNKED,
    )
    assert conn.next_event() == http1.Data(b"hello")
    end = conn.next_event()
    assert isinstance(end, http1.EndOfMessage)
    assert end.trailers.get(b"x-t") == b"1"
    assert conn.next_event() is http1.PAUSED
    head = conn.send(http1.Response(200, http1.Headers([(b"Content-Type", b"text/plain")])))
    assert head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert conn.send(http1.Data(b"hi")) == b"2\r\nhi\r\n"
    assert conn.send(http1.EndOfMessage()) == b"0\r\n\r\n"
    conn.start_next_cycle()
    nxt = conn.next_event()
    assert isinstance(nxt, http1.Request)
    assert nxt.target == b"/next"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"this is not a http request.\r\nthis is not a header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /" + b"a" * 9000, 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413),
    ],
)
def test_refusals_carry_their_status(raw: bytes, status: int) -> None:
    conn = http1.Connection(http1.Role.SERVER)
    conn.receive_data(raw)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.status_hint == status


def test_percent_decoding_gives_unicode_names() -> None:
    assert http1.decode_path_text(b"/greeting/%E5%A4%AA%E9%83%8E") == "/greeting/太郎"
    with pytest.raises(RemoteProtocolError):
        http1.decode_path(b"/bad%zz")
