"""HTTPChannel driven by hand over a real socketpair: no threads, so each step is visible."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.server import ServerConfig
from kakehashi.server.threads.channel import HTTPChannel
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.poller import Phase
from kakehashi.server.threads.server import make_poller
from kakehashi.wsgi import EnvironBuilder, base_environ
from tests import server_apps
from tests.conftest import TEST_POLLER
from tests.wire import Reader

pytestmark = pytest.mark.timeout(10)


class Rig:
    def __init__(self, **settings: Any) -> None:
        settings.setdefault("poller", TEST_POLLER)
        config = ServerConfig(**settings)
        self.ctx = ServerContext(
            server_apps.app, config, EnvironBuilder(base_environ("localhost", 0))
        )
        self.poller = make_poller(self.ctx, [])
        server_end, self.client = socket.socketpair()
        server_end.setblocking(False)
        self.client.settimeout(2)
        self.channel = HTTPChannel(server_end, ("", 0), self.ctx, self.poller)
        self.poller.channels[self.channel.fd] = self.channel
        self.reader = Reader(self.client)

    def send_and_run(self, data: bytes) -> None:
        self.client.sendall(data)
        if not self.channel.owned:
            assert self.channel.claim()
        self.channel.run()

    def close(self) -> None:
        if not self.channel.closed:
            if not self.channel.owned:
                assert self.channel.claim()
            self.channel.close()
        self.poller.close()
        self.client.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def test_one_request_then_parked_idle(rig: Rig) -> None:
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rig.reader.read_response().body == b"Hello, World"
    assert not rig.channel.owned and not rig.channel.closed
    assert rig.channel.phase is Phase.IDLE and rig.channel.requests == 1
    assert rig.channel.claim()  # ownership is given once
    assert not rig.channel.claim()
    rig.channel.park()


def test_partial_head_then_rest(rig: Rig) -> None:
    rig.send_and_run(b"GET / HTTP/1.1\r\nHo")
    assert rig.channel.phase is Phase.HEAD
    rig.send_and_run(b"st: x\r\n\r\n")
    assert rig.reader.read_response().status == 200


def test_small_body_is_read_while_parked(rig: Rig) -> None:
    rig.send_and_run(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
    assert rig.channel.phase is Phase.BODY and not rig.channel.owned
    rig.send_and_run(b"cd")
    assert rig.channel.phase is Phase.BODY
    rig.send_and_run(b"efGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rig.reader.read_response().body == b"abcdef"
    rig.send_and_run(b"")  # the pipelined GET is still in the kernel's buffer
    assert rig.reader.read_response().body == b"Hello, World"


@pytest.mark.parametrize(
    ("data", "phase", "status"),
    [
        (b"", Phase.IDLE, None),
        (b"GET / HT", Phase.HEAD, 408),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na", Phase.BODY, 408),
    ],
)
def test_expire_by_phase(rig: Rig, data: bytes, phase: Phase, status: int | None) -> None:
    if data:
        rig.send_and_run(data)
    else:
        rig.channel.park()
    assert rig.channel.phase is phase
    assert rig.channel.claim()
    rig.channel.expire()
    assert rig.channel.closed
    if status is None:
        assert rig.reader.closed(1)
        assert rig.reader.buf == b""
    else:
        assert rig.reader.read_response().status == status


def test_protocol_error_refused_and_closed(rig: Rig) -> None:
    rig.send_and_run(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
    assert rig.channel.closed
    resp = rig.reader.read_response()
    assert resp.status in (400, 505) and resp.header("connection") == "close"


def test_client_eof_closes(rig: Rig) -> None:
    rig.client.shutdown(socket.SHUT_WR)
    rig.channel.run()
    assert rig.channel.closed
