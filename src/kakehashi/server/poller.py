"""Poller: the shared epoll, the channel table, and the worker and sweeper threads' loops.

Every worker thread waits in the same ``epoll.poll`` for one event at a time.  Sockets are
registered with EPOLLONESHOT, so each readiness goes to exactly one thread and the socket is
disarmed until its channel parks again (channel.py states the ownership rules).  Listening
sockets are oneshot too: one thread accepts, re-arms the listener, then serves what it
accepted.  A pipe registered level-triggered wakes every thread at shutdown.

Owns: the epoll object, ``channels`` (fd -> channel; single dict operations only, which are
atomic under the GIL), the listeners, and the wake pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kakehashi.server.channel import HTTPChannel, Phase
from kakehashi.server.context import ServerContext, error_logger
from kakehashi.server.handshakes import refuse_new_handshakes

__all__ = ["Poller"]

_ARMED = select.EPOLLIN | select.EPOLLONESHOT
# A channel whose response waits for the client (Phase.WRITE) waits for room to send instead.
_ARMED_WRITE = select.EPOLLOUT | select.EPOLLONESHOT
# Connections one thread accepts per listener event.
_ACCEPT_BATCH = 16
# On shutdown, if connections arrived within the last _BUSY_WINDOW seconds, the backlog is
# accepted again _SETTLE_ROUNDS times, _SETTLE_PAUSE apart, while handshakes under way (and
# deferred connections whose first bytes are on their way) complete.
_BUSY_WINDOW = 1.0
_SETTLE_ROUNDS = 3
_SETTLE_PAUSE = 0.01


class Poller:
    """The server's readiness machinery; methods are safe from any thread unless noted."""

    def __init__(self, ctx: ServerContext, listeners: list[socket.socket]) -> None:
        self.ctx = ctx
        self.epoll = select.epoll()
        self.channels: dict[int, HTTPChannel] = {}
        self.listeners = {sock.fileno(): sock for sock in listeners}
        self._listeners_paused = False
        self._wake_r, self._wake_w = os.pipe()
        self.epoll.register(self._wake_r, select.EPOLLIN)
        for fd in self.listeners:
            self.epoll.register(fd, _ARMED)
        self.drained = threading.Event()
        self.last_accept = 0.0  # monotonic time of the last accepted batch

    # -- channels ----------------------------------------------------------------------------

    def arm(self, channel: HTTPChannel) -> None:
        """Arm a channel's socket for one readiness event (called under the channel's lock)."""
        events = _ARMED_WRITE if channel.phase is Phase.WRITE else _ARMED
        if channel.registered:
            self.epoll.modify(channel.fd, events)
        else:
            self.epoll.register(channel.fd, events)
            channel.registered = True

    def forget(self, channel: HTTPChannel) -> None:
        """Drop a channel before its socket closes (so its fd cannot be reused before this)."""
        if channel.registered:
            try:
                self.epoll.unregister(channel.fd)
            except (OSError, ValueError):  # the epoll itself was closed at shutdown
                pass
        self.channels.pop(channel.fd, None)
        if self.ctx.metrics is not None:
            self.ctx.metrics.closed()
        if self._listeners_paused and len(self.channels) < self.ctx.config.connection_limit:
            self.resume_listeners()
        if self.ctx.stopping and not self.channels:
            self.drained.set()

    # -- worker threads ----------------------------------------------------------------------

    def work(self) -> None:
        """A worker thread's loop: wait for one event, handle it, until woken to stop."""
        poll = self.epoll.poll
        channels = self.channels
        listeners = self.listeners
        # Hand the GIL to a thread that holds an event but not the GIL, before polling
        # again; without this one thread keeps retaking it and p99 at saturation is 5x worse
        # (docs/design.md, "Latency at saturation").
        pass_gil = os.sched_yield if self.ctx.config.threads > 1 else None
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
            if pass_gil is not None:
                pass_gil()

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
            self.last_accept = time.monotonic()
            if len(self.channels) >= self.ctx.config.connection_limit:
                self._listeners_paused = True
                break
        if not self._listeners_paused:
            self._rearm_listener(listener)
        for channel in channels[1:]:
            channel.rearm()
        if channels and channels[0].claim():
            channels[0].run()

    def _new_channel(self, sock: socket.socket, addr: Any) -> HTTPChannel:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = (addr[0], addr[1])
        else:
            peer = ("", 0)
        channel = HTTPChannel(sock, peer, self.ctx, self)
        self.channels[channel.fd] = channel
        if self.ctx.metrics is not None:
            self.ctx.metrics.opened()
        return channel

    def _rearm_listener(self, listener: socket.socket) -> None:
        try:
            self.epoll.modify(listener.fileno(), _ARMED)
        except (OSError, ValueError):  # closed at shutdown
            pass

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
        if self._listeners_paused and len(self.channels) < self.ctx.config.connection_limit:
            self.resume_listeners()

    # -- shutdown ----------------------------------------------------------------------------

    def stop_accepting(self, refuse_new: bool = True) -> None:
        """Accept every connection the kernel holds for us, then close the listeners.

        New handshakes are refused first (handshakes.py), then the backlog is accepted, and
        if connections were arriving lately, accepted again as the handshakes under way
        complete.  Each is served (its request usually came with it); a client refused
        before its handshake finds the port closed and was never accepted.  See
        docs/design.md, "Shutdown order".  With ``refuse_new`` False (listeners shared with
        other worker processes, which go on accepting) the backlog is accepted once.
        """
        listeners = list(self.listeners.items())
        self.listeners = {}
        filtered = False
        for fd, listener in listeners:
            with contextlib.suppress(OSError, ValueError):
                self.epoll.unregister(fd)
            if refuse_new:
                filtered = refuse_new_handshakes(listener) or filtered
            self._accept_backlog(listener)
        if filtered and time.monotonic() - self.last_accept < _BUSY_WINDOW:
            for _ in range(_SETTLE_ROUNDS):
                time.sleep(_SETTLE_PAUSE)
                for _, listener in listeners:
                    self._accept_backlog(listener)
        for _, listener in listeners:
            listener.close()

    def _accept_backlog(self, listener: socket.socket) -> None:
        while len(self.channels) < self.ctx.config.connection_limit:
            try:
                sock, addr = listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                return
            self._new_channel(sock, addr).rearm()

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

    def wake_all(self) -> None:
        """Make every worker thread leave :meth:`work`."""
        os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Release the epoll and the pipe (after the threads are gone)."""
        self.epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        for channel in list(self.channels.values()):
            if channel.out is not None:  # spool files and a file_wrapper's file
                channel.out.discard()
            channel.sock.close()
        self.channels.clear()
        if error_logger.isEnabledFor(logging.DEBUG):
            error_logger.debug("poller closed")
