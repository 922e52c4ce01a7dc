"""What the client needs from kakehashi.http1 on the client side, including known bugs.

The last tests pin http1 behaviour that once looked wrong from the client and is now fixed.
"""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from tests.client.memory import MemoryStream, memory_client

pytestmark = pytest.mark.timeout(10)


def _sent_get() -> http1.Connection:
    conn = http1.Connection(http1.Role.CLIENT)
    conn.send(http1.Request(b"GET", b"/", http1.Headers([(b"Host", b"x")])))
    conn.send(http1.EndOfMessage())
    return conn


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_http1_refuses_a_status_below_100(status: bytes) -> None:
    conn = _sent_get()
    conn.receive_data(b"HTTP/1.1 " + status + b" X\r\nContent-Length: 2\r\n\r\nhi")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_the_client_refuses_a_status_below_100_despite_http1() -> None:
    wire = b"HTTP/1.1 000 X\r\nContent-Length: 2\r\n\r\nhi"
    with memory_client(MemoryStream([wire])) as client, pytest.raises(RemoteProtocolError):
        client.get("http://example.test/")


def test_http1_refuses_to_send_both_transfer_encoding_and_content_length() -> None:
    conn = http1.Connection(http1.Role.CLIENT)
    fields = [(b"Host", b"x"), (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")]
    with pytest.raises(LocalProtocolError):
        conn.send(http1.Request(b"POST", b"/", http1.Headers(fields)))


def test_http1_writes_the_requested_version() -> None:
    conn = http1.Connection(http1.Role.CLIENT)
    head = conn.send(http1.Request(b"GET", b"/", http1.Headers([(b"Host", b"x")]), b"1.0"))
    assert head.startswith(b"GET / HTTP/1.0\r\n")


def test_http1_reports_a_body_cut_short_as_a_remote_protocol_error() -> None:
    conn = _sent_get()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    assert isinstance(conn.next_event(), http1.Response)
    assert conn.next_event() == http1.Data(b"ab")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="3 bytes of the body missing"):
        conn.next_event()
    assert conn.trailing_data == (b"", True)  # how the client tells "cut short" apart
