"""PortablePoller: the worker threads take turns waiting in a ``selectors`` selector
(kqueue on macOS and the BSDs, select on Windows, epoll when chosen on Linux with
``--poller portable``).

The ownership rules are the epoll poller's (channel.py): a report goes to one worker, which
claims the channel; a parked connection holds no thread.  One-shot is emulated: the waiting
thread unregisters a socket as it takes its report, and only :meth:`arm` registers it
again, so a socket is never reported twice before its channel parks again.  Leader and
followers: one idle worker at a time (the one holding ``_leader``) waits in the selector;
it serves the first ready socket itself and queues the others for idle workers, so a
request usually costs no hand-off between threads.  A selector whose wait does not see
registrations made meanwhile (select, poll) is woken through a socket pair when a socket is
armed; one that keeps its set in the kernel (epoll, kqueue) is not.

Owns: the selector (every change to it under ``_mutex``), the leader lock, the queue of
ready descriptors, and the wake-up socket pair.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable

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

__all__ = ["PortablePoller", "select_capacity"]

_RETRY_PAUSE = 0.01  # after a failed wait that repeats
_STOP = -1  # the queue's sentinel: every worker that takes it puts it back and leaves
# Descriptors kept for listeners, the wake-up pair and the process's own files when the
# selector is select(), whose sets hold FD_SETSIZE descriptors at most.
_SELECT_RESERVE = 32
# Selectors that build their set anew for each wait: a registration made while a thread
# waits is seen only after a wake-up.
_USER_SPACE = tuple(
    getattr(selectors, name)
    for name in ("SelectSelector", "PollSelector")
    if hasattr(selectors, name)
)


def select_capacity() -> int:
    """How many sockets ``select()`` watches here (FD_SETSIZE: Python's Windows build uses
    512, POSIX systems 1024), less what the server keeps for itself."""
    return (512 if sys.platform == "win32" else 1024) - _SELECT_RESERVE


def _take_queued(ready: queue.SimpleQueue[int]) -> int | None:
    """A queued descriptor, or None (without raising: an exception per request costs)."""
    if ready.empty():
        return None
    try:
        return ready.get_nowait()
    except queue.Empty:  # another worker took it since
        return None


class PortablePoller(Poller):
    """The poller of every platform; methods are safe from any thread unless noted."""

    def __init__(
        self,
        ctx: ServerContext,
        listeners: list[socket.socket],
        selector: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector,
        *,
        open_channel: ChannelFactory,
    ) -> None:
        super().__init__(ctx, listeners, open_channel)
        self.selector = selector()
        self._mutex = threading.Lock()
        self._leader = threading.Lock()  # held by the one worker waiting in the selector
        self._ready: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._needs_wake = isinstance(self.selector, _USER_SPACE)
        self._waking = False  # a wake-up byte is on its way (see _wake)
        self._stopping = False
        self._failed = False  # the last wait failed (see _wait)
        self._wake_r, self._wake_w = socket.socketpair()  # a pipe cannot be selected on Windows
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # What is registered, as the selector's own map says, but read without its
        # Python-level mapping (one lookup per report); changed with the selector, under _mutex.
        self._keys: dict[int, selectors.SelectorKey] = {}
        self._register(self._wake_r.fileno(), selectors.EVENT_READ)
        for fd in self.listeners:
            self._register(fd, selectors.EVENT_READ)
        if isinstance(self.selector, selectors.SelectSelector):
            self._cap_for_select()

    def _cap_for_select(self) -> None:
        cap = select_capacity()
        if self.connection_limit > cap:
            error_logger.info(
                "at most %d connections (--connection-limit %d): select() watches no more here",
                cap,
                self.connection_limit,
            )
            self.connection_limit = cap

    # -- arming ------------------------------------------------------------------------------

    def arm(self, channel: Channel) -> None:
        """Arm a channel's socket for one report (called under the channel's lock)."""
        events = selectors.EVENT_WRITE if channel.phase is _WRITE else selectors.EVENT_READ
        self._arm_for(channel, events)

    def arm_tls(self, channel: Channel, wait: int) -> None:
        events = (selectors.EVENT_READ if wait & WAIT_READ else 0) | (
            selectors.EVENT_WRITE if wait & WAIT_WRITE else 0
        )
        self._arm_for(channel, events)

    def _arm_for(self, channel: Channel, events: int) -> None:
        channel.registered = True  # here: it has been armed, so forget() must unregister it
        with self._mutex:
            try:  # the usual case: reported, hence unregistered, since it was last armed
                self._register(channel.fd, events)
            except KeyError:  # still registered: the sweeper claimed it while parked
                self._keys[channel.fd] = self.selector.modify(channel.fd, events)
        if self._needs_wake:
            self._wake()

    def _wake(self) -> None:
        # The selector thread reads every byte and only then clears _waking, so a set flag
        # always means a byte it has not read yet: one wake-up serves every arm until then.
        if not self._waking:
            self._waking = True
            with contextlib.suppress(OSError):  # full: bytes are waiting, it will wake
                self._wake_w.send(b"x")

    def _unwatch(self, channel: Channel) -> None:
        self._unwatch_listener(channel.fd)

    def _rearm_listener(self, listener: socket.socket) -> None:
        with self._mutex:
            fd = listener.fileno()
            if self.listeners.get(fd) is not listener:  # closed at shutdown
                return
            with contextlib.suppress(KeyError):
                self._register(fd, selectors.EVENT_READ)
        if self._needs_wake:
            self._wake()

    def _unwatch_listener(self, fd: int) -> None:
        with self._mutex, contextlib.suppress(KeyError, ValueError, OSError):
            self._keys.pop(fd, None)
            self.selector.unregister(fd)

    def _register(self, fd: int, events: int) -> None:
        """Register ``fd`` (under _mutex, or before any thread runs)."""
        self._keys[fd] = self.selector.register(fd, events)

    # -- the workers' loop --------------------------------------------------------------------

    def work(self) -> None:
        """A worker thread's loop: take one ready descriptor, handle it, until woken to stop."""
        handle = self.handle
        pass_gil = self._gil_passer()
        monotonic = time.monotonic
        while True:
            fd = self._next()
            if fd == _STOP:
                self._ready.put(_STOP)
                return
            handle(fd)
            if pass_gil is not None and (now := monotonic()) >= self._next_pass:
                self._next_pass = now + PASS_GIL_EVERY  # shared; see EpollPoller.work
                pass_gil()

    def _next(self) -> int:
        """The next ready descriptor: one a leader queued, else one this thread waits for as
        the leader (queueing what else is ready for the others)."""
        ready_queue = self._ready
        while True:
            fd = _take_queued(ready_queue)
            if fd is not None:
                return fd
            with self._leader:
                fd = _take_queued(ready_queue)  # queued while this thread waited to lead
                if fd is not None:
                    return fd
                if self._stopping:
                    return _STOP
                ready = self._take(self._wait())
            if ready:
                put = self._ready.put
                for fd in ready[1:]:
                    put(fd)
                return ready[0]

    def _wait(self) -> list[tuple[selectors.SelectorKey, int]]:
        """One wait in the selector (the leader only); nothing if it failed."""
        try:
            events = self.selector.select()
        except (OSError, ValueError) as exc:  # a socket closed under the wait (Windows)
            if not self._stopping:
                error_logger.debug("selector wait failed (%s); waiting again", exc)
                if self._failed:  # twice in a row: not a passing race; do not spin on it
                    time.sleep(_RETRY_PAUSE)
                self._failed = True
            return []
        self._failed = False
        return events

    def _take(self, events: list[tuple[selectors.SelectorKey, int]]) -> list[int]:
        """Unregister each reported socket (the one-shot) and return their descriptors."""
        ready = []
        wake_fd = self._wake_r.fileno()
        with self._mutex:
            keys = self._keys
            for key, _ in events:
                if key.fd == wake_fd:
                    self._drain_wake()
                elif keys.get(key.fd) is key:  # else: unregistered since the wait returned
                    del keys[key.fd]
                    self.selector.unregister(key.fd)
                    ready.append(key.fd)
        return ready

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        self._waking = False

    def wake_all(self) -> None:
        self._stopping = True
        self._ready.put(_STOP)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _close_readiness(self) -> None:
        with self._mutex:
            self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
