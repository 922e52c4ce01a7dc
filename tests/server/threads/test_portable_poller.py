"""The portable poller's one-shot emulation over real sockets, with each selector it can
run on here: a ready socket is reported once, to one worker, and not again until re-armed."""

from __future__ import annotations

import queue
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from kakehashi.server import ServerConfig
from kakehashi.server.threads.channel import HTTPChannel
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.poller import Phase
from kakehashi.server.threads.portable_poller import PortablePoller
from kakehashi.wsgi import EnvironBuilder, base_environ
from tests.server_apps import app

pytestmark = pytest.mark.timeout(20)

SELECTORS: list[Callable[[], selectors.BaseSelector]] = [
    selectors.SelectSelector,
    selectors.PollSelector,
    selectors.DefaultSelector,
]


@dataclass
class FakeChannel:
    """What :meth:`PortablePoller.arm` reads of a channel."""

    fd: int
    phase: Phase = Phase.IDLE
    registered: bool = False


@dataclass
class Watched:
    """A poller with one worker thread whose handling of a report is recording it."""

    poller: PortablePoller
    reports: queue.SimpleQueue[int]


@pytest.fixture(params=SELECTORS, ids=lambda s: s.__name__)
def watched(request: pytest.FixtureRequest) -> Iterator[Watched]:
    config = ServerConfig(poller="portable")
    ctx = ServerContext(app, config, EnvironBuilder(base_environ("localhost", 0)))
    p = PortablePoller(ctx, [], request.param, open_channel=HTTPChannel)
    reports: queue.SimpleQueue[int] = queue.SimpleQueue()
    p.handle = reports.put  # type: ignore[method-assign]
    worker = threading.Thread(target=p.work)
    worker.start()
    yield Watched(p, reports)
    p.wake_all()
    worker.join(5)
    assert not worker.is_alive()
    p.close()


def _reported(watched: Watched, wait: float) -> int | None:
    try:
        return watched.reports.get(timeout=wait)
    except queue.Empty:
        return None


def test_a_readable_socket_is_reported_once_until_rearmed(watched: Watched) -> None:
    poller = watched.poller
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno())
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(watched, 0.3) is None  # nothing to read yet
        peer.sendall(b"x")
        assert _reported(watched, 5) == channel.fd
        assert _reported(watched, 0.5) is None  # still readable, but not armed
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(watched, 5) == channel.fd  # level-triggered: reported again
        poller.forget(channel)  # type: ignore[arg-type]


def test_a_writer_is_armed_for_room_to_send(watched: Watched) -> None:
    poller = watched.poller
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno(), Phase.WRITE)
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(watched, 5) == channel.fd  # an empty send buffer has room


def test_a_forgotten_socket_is_not_reported(watched: Watched) -> None:
    poller = watched.poller
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno())
        poller.arm(channel)  # type: ignore[arg-type]
        poller.forget(channel)  # type: ignore[arg-type]
        peer.sendall(b"x")
        assert _reported(watched, 0.5) is None


def test_wake_all_sends_every_worker_home(watched: Watched) -> None:
    poller = watched.poller
    workers = [threading.Thread(target=poller.work) for _ in range(3)]
    for worker in workers:
        worker.start()
    poller.wake_all()
    for worker in workers:
        worker.join(5)
        assert not worker.is_alive()


@pytest.mark.parametrize(
    ("choice", "kind"), [("epoll", "EpollPoller"), ("portable", "PortablePoller")]
)
def test_the_poller_setting_picks_the_implementation(choice: str, kind: str) -> None:
    from kakehashi.server.threads.server import Server

    server = Server(app, ServerConfig(bind=("127.0.0.1:0",), poller=choice))
    try:
        assert type(server._poller).__name__ == kind
    finally:
        server.shutdown(timeout=1)


@pytest.mark.parametrize("make", SELECTORS, ids=lambda s: s.__name__)
def test_many_ready_sockets_reach_the_workers_once_each(
    make: Callable[[], selectors.BaseSelector],
) -> None:
    """The leader serves one report and queues the rest: with three workers and twenty
    sockets ready at once, every socket is handled exactly once."""
    config = ServerConfig(poller="portable", threads=3)
    ctx = ServerContext(app, config, EnvironBuilder(base_environ("localhost", 0)))
    p = PortablePoller(ctx, [], make, open_channel=HTTPChannel)
    handled: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    p.handle = lambda fd: handled.put((fd, threading.get_ident()))  # type: ignore[method-assign]
    workers = [threading.Thread(target=p.work) for _ in range(3)]
    pairs = [socket.socketpair() for _ in range(20)]
    try:
        for worker in workers:
            worker.start()
        channels = [FakeChannel(ours.fileno()) for ours, _ in pairs]
        for channel in channels:
            p.arm(channel)  # type: ignore[arg-type]
        for _, peer in pairs:
            peer.sendall(b"x")
        seen = [handled.get(timeout=5)[0] for _ in channels]
        assert sorted(seen) == sorted(c.fd for c in channels)
        with pytest.raises(queue.Empty):
            handled.get(timeout=0.3)  # still readable, but none was armed again
    finally:
        p.wake_all()
        for worker in workers:
            worker.join(5)
            assert not worker.is_alive()
        p.close()
        for ours, peer in pairs:
            ours.close()
            peer.close()
