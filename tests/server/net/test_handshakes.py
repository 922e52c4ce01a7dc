"""handshakes.py: refusing new SYNs on shutdown, and seeing the handshakes the kernel still
holds (a deferred connection whose client has sent nothing yet)."""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from kakehashi.server.net.handshakes import handshakes_pending, refuse_new_handshakes
from kakehashi.server.threads import poller
from tests.conftest import StartServer, addr
from tests.wire import Reader, get, wait_until

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


@linux
@pytest.mark.parametrize("busy", [False, True], ids=["quiet", "busy"])
def test_a_handshake_that_completes_while_the_server_asks_is_accepted(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, busy: bool
) -> None:
    # The kernel hands a deferred connection over at any moment (its first bytes, or its
    # deferral's end): here exactly while the shutdown asks whether any is pending.  The
    # answer "none" is then true, and the connection waits in the backlog: the server must
    # accept once more after asking, not close the listener on that answer.
    server = start_server(shutdown_linger=2.0)
    if busy:  # a connection came lately: the rounds of accept run (asked in the loop)
        assert get(addr(server)).status == 200
    host, port = addr(server).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as client:
        real = handshakes_pending
        asked: list[bool] = []

        def completes_meanwhile(listeners: list[socket.socket]) -> bool | None:
            if real(listeners):  # our connection, deferred: it writes while we ask
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert wait_until(lambda: not real(listeners), 2)
                asked.append(True)
            return real(listeners)

        monkeypatch.setattr(poller, "handshakes_pending", completes_meanwhile)
        stopping = threading.Thread(target=server.shutdown, kwargs={"timeout": 5})
        stopping.start()
        try:
            response = Reader(client).read_response()
        finally:
            stopping.join(10)
    assert asked == [True]  # the moment was staged as meant
    assert (response.status, response.header("connection")) == (200, "close")
