"""The event loops of the asyncio engine (kakehashi.server.aio.loops): which loop ``--loop``
gives, and the selector asyncio's own loop polls with, which skips every other poll that
would not wait (``SparingSelector``): I/O is still polled at least every other pass."""

from __future__ import annotations

import asyncio
import selectors
import socket
import sys
import time

import pytest

from kakehashi.errors import ConfigError
from kakehashi.server.aio.loops import SparingSelector, new_loop

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def ready_pair() -> tuple[SparingSelector, socket.socket, socket.socket]:
    """A selector watching one end of a socket pair whose other end has written: readable
    until read."""
    reader, writer = socket.socketpair()
    selector = SparingSelector()
    selector.register(reader, selectors.EVENT_READ)
    writer.send(b"x")
    yield selector, reader, writer
    selector.close()
    reader.close()
    writer.close()


def test_a_zero_timeout_poll_right_after_a_poll_is_skipped_and_the_next_is_made(
    ready_pair: tuple[SparingSelector, socket.socket, socket.socket],
) -> None:
    selector, reader, _ = ready_pair
    assert [key.fileobj for key, _ in selector.select(0)] == [reader]
    assert selector.select(0) == []  # right after a poll: skipped
    assert [key.fileobj for key, _ in selector.select(0)] == [reader]  # every other pass
    assert selector.select(-1) == []  # a negative timeout does not wait either
    assert [key.fileobj for key, _ in selector.select(0)] == [reader]


def test_a_poll_that_may_wait_is_always_made(
    ready_pair: tuple[SparingSelector, socket.socket, socket.socket],
) -> None:
    selector, reader, _ = ready_pair
    for timeout in (None, 0.5, None, 1.0):  # each right after a poll
        assert [key.fileobj for key, _ in selector.select(timeout)] == [reader]


def test_a_wait_is_not_cut_short_by_a_skip(
    ready_pair: tuple[SparingSelector, socket.socket, socket.socket],
) -> None:
    selector, reader, _ = ready_pair
    reader.recv(1)  # nothing readable any more
    assert selector.select(0) == []
    started = time.monotonic()
    assert selector.select(0.2) == []  # waited, though the poll before was made
    assert time.monotonic() - started >= 0.15


@pytest.mark.skipif(sys.platform == "win32", reason="asyncio's loop there has no selector")
def test_asyncio_loop_polls_with_the_sparing_selector() -> None:
    loop, name = new_loop("asyncio")
    try:
        assert name == "asyncio"
        assert isinstance(loop._selector, SparingSelector)  # type: ignore[attr-defined]
    finally:
        loop.close()


def test_ready_callbacks_cannot_starve_io() -> None:
    """A task that never waits (``sleep(0)`` forever) makes every pass one that would not
    wait; a socket's data is still read, within a few passes."""
    loop, _ = new_loop("asyncio")
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    passes = 0

    async def spin() -> None:
        nonlocal passes
        while True:
            passes += 1
            await asyncio.sleep(0)

    async def main() -> int:
        spinner = asyncio.ensure_future(spin())
        receiving = asyncio.ensure_future(loop.sock_recv(reader, 4))
        for _ in range(3):  # the receive now waits for the selector to say "readable"
            await asyncio.sleep(0)
        before = passes
        writer.send(b"ping")
        data = await asyncio.wait_for(receiving, 5)
        taken = passes - before
        spinner.cancel()
        assert data == b"ping"
        return taken

    try:
        assert loop.run_until_complete(main()) <= 4
    finally:
        loop.close()
        reader.close()
        writer.close()


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ConfigError, match="--loop must be"):
        new_loop("nosuchloop")
