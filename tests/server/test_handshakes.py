"""handshakes.py: refusing new SYNs on shutdown, and seeing the handshakes the kernel still
holds (a deferred connection whose client has sent nothing yet)."""

from __future__ import annotations

import socket
import sys

import pytest

from kakehashi.server.handshakes import handshakes_pending, refuse_new_handshakes
from tests.wire import wait_until

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _deferred_listener() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    listener.setblocking(False)
    return listener


@linux
def test_a_connection_that_sent_nothing_is_pending_until_its_first_bytes() -> None:
    with _deferred_listener() as listener:
        assert handshakes_pending([listener]) is False
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            assert handshakes_pending([listener]) is True  # connect() returned, accept() can't
            with pytest.raises(BlockingIOError):
                listener.accept()
            client.sendall(b"GET / HTTP/1.1\r\n")
            assert wait_until(lambda: not handshakes_pending([listener]), 2)
            served, _ = listener.accept()
            served.close()


@linux
def test_refused_handshakes_leave_nothing_pending() -> None:
    with _deferred_listener() as listener:
        assert refuse_new_handshakes(listener)
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect_ex(listener.getsockname())  # its SYN is dropped: no SYN_RECV
            assert handshakes_pending([listener]) is False
        finally:
            client.close()


def test_unknown_for_sockets_without_a_tcp_table() -> None:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets")
    one, two = socket.socketpair(socket.AF_UNIX)
    with one, two:
        assert handshakes_pending([one]) is None
    assert handshakes_pending([]) is None
