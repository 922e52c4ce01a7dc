"""EpollPoller: every worker thread waits in the same ``epoll.poll`` (Linux).

Sockets are registered with EPOLLONESHOT, so each readiness goes to exactly one thread and
the socket is disarmed until its channel parks again: no thread hands a connection to
another, so a request costs no queue and no wake-up.  Listening sockets are oneshot too.  A
pipe registered level-triggered wakes every thread at shutdown.

Owns: the epoll object and the wake pipe.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time

from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.poller import (
    PASS_GIL_EVERY,
    WAIT_READ,
    WAIT_WRITE,
    Channel,
    ChannelFactory,
    Phase,
    Poller,
)

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_WRITE = Phase.WRITE

__all__ = ["EpollPoller", "available"]


def available() -> bool:
    """Whether this platform has epoll (Linux)."""
    return hasattr(select, "epoll")


_ARMED = getattr(select, "EPOLLIN", 1) | getattr(select, "EPOLLONESHOT", 1 << 30)
# A channel whose response waits for the client (Phase.WRITE) waits for room to send instead.
_ARMED_WRITE = getattr(select, "EPOLLOUT", 4) | getattr(select, "EPOLLONESHOT", 1 << 30)
_ARMED_FOR = {
    WAIT_READ: _ARMED,
    WAIT_WRITE: _ARMED_WRITE,
    WAIT_READ | WAIT_WRITE: _ARMED | _ARMED_WRITE,
}


class EpollPoller(Poller):
    """The Linux poller; methods are safe from any thread unless noted."""

    def __init__(
        self,
        ctx: ServerContext,
        listeners: list[socket.socket],
        open_channel: ChannelFactory,
    ) -> None:
        super().__init__(ctx, listeners, open_channel)
        self.epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        self.epoll.register(self._wake_r, select.EPOLLIN)
        for fd in self.listeners:
            self.epoll.register(fd, _ARMED)

    def arm(self, channel: Channel) -> None:
        """Arm a channel's socket for one readiness event (called under the channel's lock)."""
        events = _ARMED_WRITE if channel.phase is _WRITE else _ARMED
        if channel.registered:
            self.epoll.modify(channel.fd, events)
        else:
            self.epoll.register(channel.fd, events)
            channel.registered = True

    def arm_tls(self, channel: Channel, wait: int) -> None:
        events = _ARMED_FOR[wait]
        if channel.registered:
            self.epoll.modify(channel.fd, events)
        else:
            self.epoll.register(channel.fd, events)
            channel.registered = True

    def _unwatch(self, channel: Channel) -> None:
        try:
            self.epoll.unregister(channel.fd)
        except (OSError, ValueError):  # the epoll itself was closed at shutdown
            pass

    def _rearm_listener(self, listener: socket.socket) -> None:
        try:
            self.epoll.modify(listener.fileno(), _ARMED)
        except (OSError, ValueError):  # closed at shutdown
            pass

    def _unwatch_listener(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(fd)

    def work(self) -> None:
        """A worker thread's loop: wait for one event, handle it, until woken to stop.

        The hot path: :meth:`Poller.handle` inlined, with its lookups bound to locals."""
        poll = self.epoll.poll
        channels = self.channels
        listeners = self.listeners
        # Hand the GIL to a thread that holds an event but not the GIL, at least every
        # PASS_GIL_EVERY seconds: without this one thread keeps retaking it and p99 at
        # saturation is 20x worse; doing it after every event costs a context switch per
        # request (docs/design.md, "Latency at saturation").
        pass_gil = self._gil_passer()
        monotonic = time.monotonic
        while True:
            try:
                events = poll(-1, 1)
            except (OSError, ValueError):  # the epoll was closed under us: we are done
                return
            for fd, _ in events:
                channel = channels.get(fd)
                try:
                    if channel is not None:
                        if channel.claim():
                            channel.run()
                    elif fd in listeners:
                        self._accept(listeners[fd])
                    elif fd == self._wake_r:
                        return
                except BaseException:  # never let one event cost the server a thread
                    error_logger.exception("internal error in a worker thread; it goes on")
            if pass_gil is not None and (now := monotonic()) >= self._next_pass:
                # Shared by the threads: whichever passes the GIL, the next pass is due
                # PASS_GIL_EVERY later (a lost race only passes it twice).
                self._next_pass = now + PASS_GIL_EVERY
                pass_gil()

    def wake_all(self) -> None:
        os.write(self._wake_w, b"x")

    def _close_readiness(self) -> None:
        self.epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
