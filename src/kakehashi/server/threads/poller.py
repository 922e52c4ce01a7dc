"""The poller interface: the channel table, accepting, the sweeper, and shutdown.

A poller arms a parked connection for one readiness report (read, or write in Phase.WRITE),
delivered to exactly one worker thread, which then claims the channel (channel.py states the
ownership rules); a connection is not reported again until it is re-armed.  Listening
sockets are armed the same way: one thread accepts, re-arms the listener, then serves what it
accepted.  Two implementations (:func:`make_poller` picks one, ``--poller``):

- ``epoll_poller.EpollPoller`` (Linux): every worker thread waits in one ``epoll.poll`` with
  EPOLLONESHOT; no thread hands anything to another.
- ``portable_poller.PortablePoller`` (any platform, on ``selectors``): one thread waits in
  the selector and hands each ready connection to an idle worker through a queue.

Owns: ``channels`` (fd -> channel; single dict operations only, which are atomic under the
GIL) and the listeners; the subclass owns its readiness object.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kakehashi.server.net.handshakes import handshakes_pending, refuse_new_handshakes
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.context import ServerContext

__all__ = ["ChannelFactory", "Poller"]

# What a channel may ask the poller to wait for, beyond what its phase says (Poller.arm).
WAIT_READ = 1
WAIT_WRITE = 2


class Phase(enum.Enum):
    IDLE = "idle"  # waiting for the first byte of a request (fresh or kept alive)
    HEAD = "head"  # part of a request head has arrived
    BODY = "body"  # head done, reading a small body before running the application
    WRITE = "write"  # the response is queued: waiting for the client to take it
    HANDSHAKE = "handshake"  # TLS: the handshake is under way (tls_channel.py)


class Channel(Protocol):
    """A connection as the pollers see it (channel.py's Channel and its TLS kind): a
    protocol of its own, so that the pollers never import the channel that imports them."""

    fd: int
    sock: socket.socket
    registered: bool
    owned: bool
    deadline: float
    phase: Phase
    out: Any

    def claim(self) -> bool: ...
    def run(self) -> None: ...
    def rearm(self) -> None: ...
    def expire(self) -> None: ...
    def linger(self, until: float) -> None: ...
    def close(self) -> None: ...


ChannelFactory = Callable[[socket.socket, tuple[str, int], ServerContext, "Poller"], Channel]

# Connections one thread accepts per listener event.
_ACCEPT_BATCH = 16
# On shutdown, with new handshakes refused, the backlog is accepted again every _SETTLE_PAUSE
# while the handshakes under way complete, even when none came lately: the shutdown itself
# brings them, as kept-alive clients told "Connection: close" reconnect at once (skipping
# this when no connection had come for a second lost 1 in 15,000 requests on the portable
# poller, 1 run in 8 of test_sigterm_under_load_loses_no_request).  It ends when none came
# for _SETTLE_QUIET and the kernel holds none still pending (handshakes.py), at the latest at
# the idle connections' linger (at least _SETTLE_MAX).  With TCP_DEFER_ACCEPT a completed
# handshake stays pending until the client's first bytes come, which its application can
# delay by hundreds of milliseconds under load; one still pending when the listener closes
# is reset, though the client saw its connect() succeed.  Without the kernel's word (no
# procfs), quiet for _SETTLE_QUIET ends it.
_SETTLE_PAUSE = 0.01
_SETTLE_QUIET = 0.1
_SETTLE_MAX = 1.0
# How often a busy worker passes the GIL to a thread that holds a readiness report but not
# the GIL (each poller's work()): the longest such a thread waits behind a busy one, and one
# context switch per that long instead of one per event (docs/design.md, "Latency at
# saturation").  Shared by the workers through Poller._next_pass.
PASS_GIL_EVERY = 0.0005


def _sleep_zero() -> None:
    time.sleep(0)  # releases the GIL and yields the CPU (Sleep(0) on Windows)


# Releases the GIL and lets another runnable thread have the CPU; Windows has no sched_yield.
_yield_cpu: Callable[[], None] = getattr(os, "sched_yield", None) or _sleep_zero


class Poller:
    """The server's readiness machinery; methods are safe from any thread unless noted.

    A subclass provides the readiness object: :meth:`arm`, :meth:`_unwatch`,
    :meth:`_rearm_listener`, :meth:`work`, :meth:`wake_all` and :meth:`_close_readiness`.
    """

    def __init__(
        self,
        ctx: ServerContext,
        listeners: list[socket.socket],
        open_channel: ChannelFactory,
    ) -> None:
        self.ctx = ctx
        self._next_pass = 0.0  # when a busy worker next passes the GIL (PASS_GIL_EVERY)
        # What a new connection becomes: an Channel, or with TLS a TLSChannel
        # (tls_channel.py), chosen once here so that plain connections never test for TLS.
        self._open_channel = open_channel
        self.channels: dict[int, Channel] = {}
        self.listeners = {sock.fileno(): sock for sock in listeners}
        self._listeners_paused = False
        self.drained = threading.Event()
        # What this poller can watch at once; a subclass may lower it (select's FD_SETSIZE).
        self.connection_limit = ctx.config.connection_limit

    # -- what a subclass provides ------------------------------------------------------------

    def arm(self, channel: Channel) -> None:
        """Arm a channel's socket for one readiness report (called under the channel's lock):
        readable, or writable in Phase.WRITE."""
        raise NotImplementedError

    def arm_tls(self, channel: Channel, wait: int) -> None:
        """Arm for ``wait`` (WAIT_READ, WAIT_WRITE or both, from channel.py) whatever the
        phase says: a TLS handshake waits for what OpenSSL asks (tls_channel.py).  Kept
        apart from :meth:`arm` so the plain path tests nothing more."""
        raise NotImplementedError

    def _unwatch(self, channel: Channel) -> None:
        """Stop watching a channel's socket (before it closes)."""
        raise NotImplementedError

    def _rearm_listener(self, listener: socket.socket) -> None:
        """Arm a listener for one report (no-op once it is closed)."""
        raise NotImplementedError

    def _unwatch_listener(self, fd: int) -> None:
        """Stop watching a listener (shutdown)."""
        raise NotImplementedError

    def work(self) -> None:
        """A worker thread's loop: take one readiness report, handle it, until woken to stop."""
        raise NotImplementedError

    def wake_all(self) -> None:
        """Make every worker thread leave :meth:`work`."""
        raise NotImplementedError

    def _close_readiness(self) -> None:
        """Release the readiness object and its wake-up channel."""
        raise NotImplementedError

    def _gil_passer(self) -> Callable[[], None] | None:
        """What a worker calls every PASS_GIL_EVERY seconds while busy; None with a single
        worker thread, which has nobody to pass the GIL to."""
        return _yield_cpu if self.ctx.config.threads > 1 else None

    def start(self) -> None:
        """Start the poller's own threads, if it has any (before the workers')."""

    @property
    def threads(self) -> list[threading.Thread]:
        """The poller's own threads (joined at shutdown)."""
        return []

    # -- channels ----------------------------------------------------------------------------

    def forget(self, channel: Channel) -> None:
        """Drop a channel before its socket closes (so its fd cannot be reused before this)."""
        if channel.registered:
            self._unwatch(channel)
        self.channels.pop(channel.fd, None)
        if self.ctx.metrics is not None:
            self.ctx.metrics.closed()
        if self._listeners_paused and len(self.channels) < self.connection_limit:
            self.resume_listeners()
        if self.ctx.stopping and not self.channels:
            self.drained.set()

    def in_flight(self) -> float:
        """How many connections a thread is serving now (reading a request, running the
        application, writing a response): the metrics' in-flight gauge, counted when read
        so that a request costs nothing to say it began or ended."""
        return float(sum(1 for channel in list(self.channels.values()) if channel.owned))

    def handle(self, fd: int) -> None:
        """Handle one readiness report for ``fd`` (a worker thread, outside the epoll's own
        loop, which inlines this)."""
        channel = self.channels.get(fd)
        try:
            if channel is not None:
                if channel.claim():
                    channel.run()
            elif fd in self.listeners:
                self._accept(self.listeners[fd])
        except BaseException:  # never let one event cost the server a thread
            error_logger.exception("internal error in a worker thread; it goes on")

    def _accept(self, listener: socket.socket) -> None:
        """Accept what is waiting (up to a batch), re-arm the listener, serve one connection.

        Thanks to TCP_DEFER_ACCEPT a new connection usually has its request waiting: this
        thread serves the first at once and parks the others, already readable, so idle
        threads take them in parallel and none waits behind a slow request.
        """
        channels = []
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, addr = listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:  # EMFILE and friends: pause until the sweeper's tick
                if not self.ctx.stopping:
                    error_logger.warning("accept failed (%s); pausing new connections", exc)
                    self._listeners_paused = True
                break
            channels.append(self._new_channel(sock, addr))
            if len(self.channels) >= self.connection_limit:
                self._listeners_paused = True
                break
        if not self._listeners_paused:
            self._rearm_listener(listener)
        for channel in channels[1:]:
            channel.rearm()
        if channels and channels[0].claim():
            channels[0].run()

    def _new_channel(self, sock: socket.socket, addr: Any) -> Channel:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # not a Unix socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = (addr[0], addr[1])
        else:
            peer = ("", 0)
        channel = self._open_channel(sock, peer, self.ctx, self)
        self.channels[channel.fd] = channel
        if self.ctx.metrics is not None:
            self.ctx.metrics.opened()
        return channel

    def resume_listeners(self) -> None:
        self._listeners_paused = False
        for listener in self.listeners.values():
            self._rearm_listener(listener)

    # -- the sweeper thread ------------------------------------------------------------------

    def sweep(
        self, stop: threading.Event, tick: float, on_tick: Callable[[], None] | None = None
    ) -> None:
        """Close parked channels whose deadline passed, every ``tick`` seconds, until stopped;
        ``on_tick`` (the server's supervision) runs after each pass."""
        while not stop.wait(tick):
            try:
                self._sweep_once()
                if on_tick is not None:
                    on_tick()
            except BaseException:  # the sweeper must outlive any bug in one pass
                error_logger.exception("internal error in the sweeper; it goes on")

    def _sweep_once(self) -> None:
        now = time.monotonic()
        for channel in list(self.channels.values()):
            if channel.deadline <= now and channel.claim():
                channel.expire()
        if self._listeners_paused and len(self.channels) < self.connection_limit:
            self.resume_listeners()

    # -- shutdown ----------------------------------------------------------------------------

    def stop_accepting(self, refuse_new: bool = True, until: float = 0.0) -> None:
        """Accept every connection the kernel holds for us, then close the listeners.

        New handshakes are refused first (handshakes.py), then the backlog is accepted, and
        accepted again as the handshakes under way complete, until quiet (at most until
        ``until``, the idle connections' linger: a connection the client saw established
        gets as long to send its request as an idle one).  Each is served (its request
        usually came with it); a client refused before its handshake finds the port closed
        and was never accepted.  See docs/design.md, "Shutdown order".  With ``refuse_new``
        False (listeners shared with other worker processes, which go on accepting) the
        backlog is accepted once.
        """
        listeners = list(self.listeners.items())
        self.listeners = {}
        socks = [listener for _, listener in listeners]
        filtered = False
        for fd, listener in listeners:
            self._unwatch_listener(fd)
            if refuse_new:
                filtered = refuse_new_handshakes(listener) or filtered
        for listener in socks:
            self._accept_backlog(listener)
        if filtered:
            self._settle(socks, until)
        for listener in socks:
            listener.close()

    def _settle(self, listeners: list[socket.socket], until: float) -> None:
        """Accept again, every _SETTLE_PAUSE, until no connection came for _SETTLE_QUIET and
        none is pending in the kernel; at most until ``until`` or _SETTLE_MAX, the later
        (new handshakes are refused, so only those under way can come)."""
        start = quiet_since = time.monotonic()
        give_up = max(until, start + _SETTLE_MAX)
        while time.monotonic() < give_up:
            time.sleep(_SETTLE_PAUSE)
            # Pending is asked before the round, as above: none pending then and none in
            # this round means none left at all.
            pending = handshakes_pending(listeners)
            if sum(self._accept_backlog(listener) for listener in listeners):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= _SETTLE_QUIET and not pending:
                return

    def _accept_backlog(self, listener: socket.socket) -> int:
        """Accept what the kernel holds for ``listener``; returns how many."""
        accepted = 0
        while len(self.channels) < self.connection_limit:
            try:
                sock, addr = listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                break
            self._new_channel(sock, addr).rearm()
            accepted += 1
        return accepted

    def linger_idle(self, until: float) -> None:
        """Idle connections are closed at ``until`` unless a request arrives before."""
        for channel in list(self.channels.values()):
            channel.linger(until)
        if not self.channels:
            self.drained.set()

    def close_parked(self) -> None:
        """Close every channel that is not serving a request right now (at the end of the
        grace period: a response still waiting for its reader is cut too)."""
        for channel in list(self.channels.values()):
            if channel.claim():
                channel.close()
        if not self.channels:
            self.drained.set()

    def abort_all(self) -> None:
        """Break the sockets of requests still running, so their threads unblock and close."""
        for channel in list(self.channels.values()):
            with contextlib.suppress(OSError):
                channel.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release everything (after the threads are gone)."""
        self._close_readiness()
        for channel in list(self.channels.values()):
            if channel.out is not None:  # spool files and a file_wrapper's file
                channel.out.discard()
            channel.sock.close()
        self.channels.clear()
        if error_logger.isEnabledFor(logging.DEBUG):
            error_logger.debug("poller closed")
