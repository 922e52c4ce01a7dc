"""The portable poller's one-shot emulation over real sockets, with each selector it can
run on here: a ready socket is reported once, to one worker, and not again until re-armed."""

from __future__ import annotations

import queue
import selectors
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from kakehashi.server import ServerConfig
from kakehashi.server.channel import Phase
from kakehashi.server.context import ServerContext
from kakehashi.server.portable_poller import PortablePoller
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


@pytest.fixture(params=SELECTORS, ids=lambda s: s.__name__)
def poller(request: pytest.FixtureRequest) -> Iterator[PortablePoller]:
    config = ServerConfig(poller="portable")
    ctx = ServerContext(app, config, EnvironBuilder(base_environ("localhost", 0)))
    p = PortablePoller(ctx, [], request.param)
    p.start()
    yield p
    p.wake_all()
    p.close()
    assert not p.threads[0].is_alive()


def _reported(poller: PortablePoller, wait: float) -> int | None:
    try:
        return poller._ready.get(timeout=wait)
    except queue.Empty:
        return None


def test_a_readable_socket_is_reported_once_until_rearmed(poller: PortablePoller) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno())
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(poller, 0.3) is None  # nothing to read yet
        peer.sendall(b"x")
        assert _reported(poller, 5) == channel.fd
        assert _reported(poller, 0.5) is None  # still readable, but not armed
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(poller, 5) == channel.fd  # level-triggered: reported again
        poller.forget(channel)  # type: ignore[arg-type]


def test_a_writer_is_armed_for_room_to_send(poller: PortablePoller) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno(), Phase.WRITE)
        poller.arm(channel)  # type: ignore[arg-type]
        assert _reported(poller, 5) == channel.fd  # an empty send buffer has room


def test_a_forgotten_socket_is_not_reported(poller: PortablePoller) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        channel = FakeChannel(ours.fileno())
        poller.arm(channel)  # type: ignore[arg-type]
        poller.forget(channel)  # type: ignore[arg-type]
        peer.sendall(b"x")
        assert _reported(poller, 0.5) is None


def test_wake_all_sends_every_worker_home(poller: PortablePoller) -> None:
    import threading

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
    from kakehashi.server.server import Server

    server = Server(app, ServerConfig(bind=("127.0.0.1:0",), poller=choice))
    try:
        assert type(server._poller).__name__ == kind
    finally:
        server.shutdown(timeout=1)
