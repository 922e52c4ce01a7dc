"""Request bodies read while their connection is parked, before the application runs.

A small body is read without holding a thread: the connection waits in the poller between
reads, and a worker runs the application only once the whole body is here.  What a client
*announces* costs nothing: buffers grow as bytes arrive (doubling, never to more than the
announced length), and every byte held is counted against one server-wide budget, so
clients announcing large bodies and sending none cannot make the server allocate for them.

Two framings are read this way: a ``Content-Length`` body up to ``--buffer-body-size``,
received straight into its buffer, and a chunked body, decoded as it arrives, while its
decoded size stays within ``--buffer-body-size`` (the application then gets a
``CONTENT_LENGTH``, which frameworks such as Django need).  A chunked body that grows past
that, or a body that would overrun the budget, is handed to the application as a stream
with what was read so far (:class:`Handover`).

Owned by the thread that owns the connection; the budget is shared and locked.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from kakehashi.http1 import (
    ChunkedReader,
    Data,
    EndOfMessage,
    Framing,
    Limits,
    ReceiveBuffer,
    Request,
)

__all__ = ["BodyBudget", "Handover", "ParkedBody"]

# A fresh buffer has room for what already arrived plus this much; it doubles from there.
_FIRST_ROOM = 4096
_RECV_BYTES = 256 * 1024


class BodyBudget:
    """Bytes held by all parked bodies of one server, against a limit."""

    __slots__ = ("_lock", "limit", "used")

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> bool:
        """Reserve ``count`` bytes; False (nothing reserved) if that would pass the limit."""
        with self._lock:
            if self.used + count > self.limit:
                return False
            self.used += count
            return True

    def give(self, count: int) -> None:
        with self._lock:
            self.used -= count


@dataclass
class Handover:
    """A body that cannot be held: the application streams it, starting with ``prefix``
    (decoded bytes already read), then ``reader`` over ``raw`` and the socket."""

    prefix: bytes
    reader: ChunkedReader | None
    raw: bytes
    remaining: int  # Content-Length bytes still to come (0 for chunked)


class ParkedBody:
    """One body being read ahead of its application.

    Attributes:
        started: when the body started (monotonic), for the minimum rate.
        progressed: when a byte of it last arrived.
        hand_over: the body cannot be held here: a chunked body grew past the limit, or the
            budget ran out; the application must stream it (:meth:`handover`).
    """

    __slots__ = (
        "_budget",
        "_buf",
        "_got",
        "_held",
        "_limit",
        "_raw",
        "_reader",
        "hand_over",
        "length",
        "progressed",
        "request",
        "started",
    )

    def __init__(
        self, request: Request, first: bytes, budget: BodyBudget, limits: Limits, limit: int
    ) -> None:
        self.request = request
        self._budget = budget
        self._limit = limit  # the largest decoded chunked body held here
        self._held = 0
        self.hand_over = False
        self.started = self.progressed = time.monotonic()
        self._raw = ReceiveBuffer()
        self._buf = bytearray()
        self._got = 0
        if request.framing is Framing.CHUNKED:
            self.length: int | None = None
            self._reader: ChunkedReader | None = ChunkedReader(limits)
            self._raw.append(first)
        else:
            self.length = request.content_length or 0
            self._reader = None
            self._buf += first
            self._got = len(first)
            self.hand_over = not self._reserve(len(first)) or not self._grow()

    @property
    def received(self) -> int:
        """Body bytes received so far (decoded, for chunked)."""
        return self._got

    def _reserve(self, count: int) -> bool:
        if not self._budget.take(count):
            self.hand_over = True
            return False
        self._held += count
        return True

    def _grow(self) -> bool:
        """Room for more of a Content-Length body: double the buffer, within the budget."""
        assert self.length is not None
        want = min(self.length, max(len(self._buf) * 2, self._got + _FIRST_ROOM))
        extra = want - len(self._buf)
        if extra > 0:
            if not self._reserve(extra):
                return False
            self._buf += bytes(extra)
        return True

    def complete(self) -> bool:
        """Whether the whole body is here (for chunked: decodes what arrived first).

        Raises:
            RemoteProtocolError: a chunked body broke its framing.
        """
        if self.length is not None:
            return self._got >= self.length
        return self._decode()

    def receive(self, sock: socket.socket) -> int:
        """Read what the socket has into the body; returns the count read (0 at EOF).

        Check :attr:`hand_over` first: the body may have outgrown what is held here.

        Raises:
            BlockingIOError: nothing to read right now.
            OSError: the connection broke.
        """
        if self.length is None:
            data = sock.recv(_RECV_BYTES)
            self._raw.append(data)
            count = len(data)
        else:
            if len(self._buf) == self._got and not self._grow():
                return 0  # the budget ran out before reading: hand_over is set
            view = memoryview(self._buf)[self._got :]
            try:
                count = sock.recv_into(view)
            finally:
                view.release()  # the buffer grows later: no view may outlive this read
            self._got += count
        if count:
            self.progressed = time.monotonic()
        return count

    def _decode(self) -> bool:
        assert self._reader is not None
        while not self.hand_over:
            event = self._reader.read(self._raw)
            if event is None:
                return False
            if isinstance(event, EndOfMessage):
                return True
            assert isinstance(event, Data)
            # A piece past the budget is kept all the same (it is at most one receive) and
            # goes to the application at once.
            self._reserve(len(event.data))
            self._buf += event.data
            self._got += len(event.data)
            if self._got > self._limit:
                self.hand_over = True
        return False

    def body(self) -> bytearray:
        """The complete body (once :meth:`complete` said so); the budget is given back."""
        self.release()
        if self.length is not None:
            del self._buf[self._got :]
        return self._buf

    def handover(self) -> Handover:
        """What the application must stream: the bytes so far, then the rest of the body."""
        self.release()
        if self.length is None:
            return Handover(bytes(self._buf), self._reader, bytes(self._raw), 0)
        return Handover(bytes(self._buf[: self._got]), None, b"", self.length - self._got)

    def leftover(self) -> bytes:
        """Bytes received after a chunked body: the start of a pipelined next request."""
        return bytes(self._raw)

    def release(self) -> None:
        """Give the held bytes back to the budget (idempotent)."""
        if self._held:
            self._budget.give(self._held)
            self._held = 0
