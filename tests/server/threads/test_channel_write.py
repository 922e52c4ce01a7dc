"""The write phase of HTTPChannel driven by hand over a real socketpair (no worker threads):
who may touch a channel whose response waits for its reader (docs/design.md, ownership
rules W1-W5)."""

from __future__ import annotations

import logging
import select
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.server.threads.epoll_poller import EpollPoller
from kakehashi.server.threads.poller import Phase
from kakehashi.server.threads.portable_poller import PortablePoller
from tests.server.threads.test_channel import Rig
from tests.wire import parse_response

pytestmark = pytest.mark.timeout(10)

BLOCK = 65536


class Streaming:
    """``blocks`` blocks of BLOCK bytes; records the thread of every step and the close."""

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks
        self.threads: list[int] = []
        self.closed_by: list[int] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return self

    def __iter__(self) -> Iterator[bytes]:
        for n in range(self.blocks):
            self.threads.append(threading.get_ident())
            yield bytes([n % 251]) * BLOCK

    def close(self) -> None:
        self.closed_by.append(threading.get_ident())


def expected(blocks: int) -> bytes:
    return b"".join(bytes([n % 251]) * BLOCK for n in range(blocks))


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(send_timeout=5.0)
    r.channel.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    yield r
    r.close()


def armed_for(rig: Rig) -> int:
    """The events the channel's socket is armed for and ready, in epoll's bits, as the
    poller's epoll or selector (no thread waits in it here) reports them now."""
    poller = rig.poller
    if isinstance(poller, EpollPoller):
        return dict(poller.epoll.poll(0.2)).get(rig.channel.fd, 0)
    assert isinstance(poller, PortablePoller)
    ready = {key.fd: mask for key, mask in poller.selector.select(0.2)}.get(rig.channel.fd, 0)
    return (select.EPOLLIN if ready & selectors.EVENT_READ else 0) | (
        select.EPOLLOUT if ready & selectors.EVENT_WRITE else 0
    )


def run_until_done(rig: Rig, blocks: int) -> bytes:
    """Read the response, giving the channel a turn whenever it is armed (as a worker would)."""
    want = len(expected(blocks))
    got = bytearray()
    for _ in range(10_000):
        if rig.channel.phase is Phase.WRITE and armed_for(rig) & select.EPOLLOUT:
            assert rig.channel.claim()
            rig.channel.run()
        got += rig.client.recv(65536)
        if len(got) >= want and rig.channel.phase is not Phase.WRITE:
            break
    return bytes(got)


def test_w1_a_queued_response_parks_the_channel_for_writing(rig: Rig) -> None:
    app = rig.ctx.app = Streaming(16)
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # the iterator ran to its end and was closed on this thread; the rest waits in `out`
    assert len(app.threads) == 16 and app.closed_by == [threading.get_ident()]
    channel = rig.channel
    assert channel.phase is Phase.WRITE and not channel.owned and channel.out is not None
    assert channel.out.complete and channel.out.total > 0
    assert armed_for(rig) == 0  # armed for EPOLLOUT only, and the client reads nothing yet
    assert parse_response(run_until_done(rig, 16)).body == expected(16)
    # done: back to reading, kept alive, armed for EPOLLIN
    assert channel.phase is Phase.IDLE and channel.out is None and not channel.closed
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(app.threads) == 32


def test_w2_claim_is_exclusive_in_the_write_phase(rig: Rig) -> None:
    rig.ctx.app = Streaming(16)
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rig.channel.claim()
    assert not rig.channel.claim()  # a second event, or the sweeper: refused
    rig.channel.run()  # nothing was read: it sends nothing, parks again
    assert rig.channel.phase is Phase.WRITE and not rig.channel.owned


def test_w3_the_sweeper_drops_a_reader_past_its_deadline_only(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.error")
    rig.ctx.app = Streaming(16)
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    channel = rig.channel
    out = channel.out
    assert out is not None
    assert channel.deadline == out.pace.deadline()
    assert channel.claim()
    channel.expire()  # early (the sweeper raced a new deadline): it parks again
    assert not channel.closed and channel.phase is Phase.WRITE and not channel.owned
    out.pace.last_progress -= 10  # as if the reader took nothing for 10 s
    assert channel.claim()
    channel.expire()
    assert channel.closed and channel.out is None
    assert "slow reader - dropped in phase write (no progress for 5 s)" in caplog.text


def test_w4_shutdown_keeps_a_waiting_response(rig: Rig) -> None:
    rig.ctx.app = Streaming(16)
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    rig.ctx.stopping = True
    rig.poller.linger_idle(time.monotonic())  # what shutdown does to parked connections
    assert not rig.channel.closed and rig.channel.phase is Phase.WRITE
    assert rig.channel.deadline > time.monotonic()
    assert parse_response(run_until_done(rig, 16)).body == expected(16)
    # once sent, the connection (kept alive by that response's head) lingers no longer than
    # the shutdown's linger: here already over, so the sweeper closes it at its next tick
    assert rig.channel.phase is Phase.IDLE
    assert rig.channel.deadline <= max(rig.ctx.linger_until, time.monotonic())


def test_w5_pipelined_requests_wait_and_the_iterator_never_changes_thread(rig: Rig) -> None:
    app = rig.ctx.app = Streaming(16)
    rig.send_and_run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(app.threads) == 16  # the second waits until the first is sent
    other = threading.Thread(target=run_until_done, args=(rig, 32))
    other.start()  # another thread sends the rest and then serves the next request
    other.join(8)
    assert not other.is_alive()
    assert len(app.threads) == 32
    first, second = set(app.threads[:16]), set(app.threads[16:])
    assert len(first) == len(second) == 1  # each iterator ran on one thread only
    assert app.closed_by == [app.threads[0], app.threads[16]]
