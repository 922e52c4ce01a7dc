"""PortablePoller: one thread waits in a ``selectors`` selector and hands each ready
connection to an idle worker thread (kqueue on macOS and the BSDs, select on Windows, epoll
when chosen on Linux with ``--poller portable``).

The ownership rules are the epoll poller's (channel.py): a report goes to one worker, which
claims the channel; a parked connection holds no thread.  One-shot is emulated: the selector
thread unregisters a socket as it hands it over, and only :meth:`arm` registers it again, so
a socket is never reported twice before its channel parks again.  A selector whose wait
does not see registrations made meanwhile (select, poll) is woken through a socket pair
when a socket is armed; one that keeps its set in the kernel (epoll, kqueue) is not.

Owns: the selector (every change to it under ``_mutex``), the selector thread, the queue of
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

from kakehashi.server.channel import WAIT_READ, WAIT_WRITE, HTTPChannel, Phase
from kakehashi.server.context import ServerContext, error_logger
from kakehashi.server.poller import ChannelFactory, Poller

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


class PortablePoller(Poller):
    """The poller of every platform; methods are safe from any thread unless noted."""

    def __init__(
        self,
        ctx: ServerContext,
        listeners: list[socket.socket],
        selector: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector,
        open_channel: ChannelFactory = HTTPChannel,
    ) -> None:
        super().__init__(ctx, listeners, open_channel)
        self.selector = selector()
        self._mutex = threading.Lock()
        self._ready: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._needs_wake = isinstance(self.selector, _USER_SPACE)
        self._waking = False  # a wake-up byte is on its way (see _wake)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()  # a pipe cannot be selected on Windows
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r.fileno(), selectors.EVENT_READ)
        for fd in self.listeners:
            self.selector.register(fd, selectors.EVENT_READ)
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

    def arm(self, channel: HTTPChannel) -> None:
        """Arm a channel's socket for one report (called under the channel's lock)."""
        events = selectors.EVENT_WRITE if channel.phase is Phase.WRITE else selectors.EVENT_READ
        self._arm_for(channel, events)

    def arm_tls(self, channel: HTTPChannel, wait: int) -> None:
        events = (selectors.EVENT_READ if wait & WAIT_READ else 0) | (
            selectors.EVENT_WRITE if wait & WAIT_WRITE else 0
        )
        self._arm_for(channel, events)

    def _arm_for(self, channel: HTTPChannel, events: int) -> None:
        channel.registered = True  # here: it has been armed, so forget() must unregister it
        with self._mutex:
            try:  # the usual case: reported, hence unregistered, since it was last armed
                self.selector.register(channel.fd, events)
            except KeyError:  # still registered: the sweeper claimed it while parked
                self.selector.modify(channel.fd, events)
        if self._needs_wake:
            self._wake()

    def _wake(self) -> None:
        # The selector thread reads every byte and only then clears _waking, so a set flag
        # always means a byte it has not read yet: one wake-up serves every arm until then.
        if not self._waking:
            self._waking = True
            with contextlib.suppress(OSError):  # full: bytes are waiting, it will wake
                self._wake_w.send(b"x")

    def _unwatch(self, channel: HTTPChannel) -> None:
        self._unwatch_listener(channel.fd)

    def _rearm_listener(self, listener: socket.socket) -> None:
        with self._mutex:
            fd = listener.fileno()
            if self.listeners.get(fd) is not listener:  # closed at shutdown
                return
            with contextlib.suppress(KeyError):
                self.selector.register(fd, selectors.EVENT_READ)
        if self._needs_wake:
            self._wake()

    def _unwatch_listener(self, fd: int) -> None:
        with self._mutex, contextlib.suppress(KeyError, ValueError, OSError):
            self.selector.unregister(fd)

    # -- threads -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._select, name="kakehashi-poller", daemon=True)
        self._thread.start()

    @property
    def threads(self) -> list[threading.Thread]:
        return [self._thread] if self._thread is not None else []

    def _select(self) -> None:
        """The selector thread: wait, take each ready socket out of the selector (one-shot),
        queue it for a worker; until :meth:`wake_all`."""
        failed = False
        while not self._stopping:
            try:
                events = self.selector.select()
            except (OSError, ValueError) as exc:  # a socket closed under the wait (Windows)
                if self._stopping:
                    return
                error_logger.debug("selector wait failed (%s); waiting again", exc)
                if failed:  # twice in a row: not a passing race; do not spin on it
                    time.sleep(_RETRY_PAUSE)
                failed = True
                continue
            failed = False
            try:
                self._hand_out(events)
            except BaseException:  # the one thread that watches sockets must not die
                error_logger.exception("internal error in the selector thread; it goes on")

    def _hand_out(self, events: list[tuple[selectors.SelectorKey, int]]) -> None:
        ready = []
        wake_fd = self._wake_r.fileno()
        with self._mutex:
            keys = self.selector.get_map()
            for key, _ in events:
                if key.fd == wake_fd:
                    self._drain_wake()
                elif keys.get(key.fd) is key:  # else: unregistered since the wait returned
                    self.selector.unregister(key.fd)
                    ready.append(key.fd)
        put = self._ready.put
        for fd in ready:
            put(fd)

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        self._waking = False

    def work(self) -> None:
        """A worker thread's loop: take one ready descriptor, handle it, until woken to stop."""
        get = self._ready.get
        handle = self.handle
        while True:
            fd = get()
            if fd == _STOP:
                self._ready.put(_STOP)
                return
            handle(fd)

    def wake_all(self) -> None:
        self._stopping = True
        self._ready.put(_STOP)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _close_readiness(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        with self._mutex:
            self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
