"""Request bodies read while their connection is parked, before the application runs.

A small body is read without holding a thread: the connection waits in the poller between
reads, and a worker runs the application only once the whole body is here.  What a client
*announces* costs little: its buffer starts small and doubles as bytes arrive, and a new
buffer of the whole announced length is allocated only once a tenth of the body is here
(``_WHOLE_AFTER``), so what a client makes the server allocate is at most ten times what
it sent; every byte held is counted against one server-wide budget, so clients announcing
large bodies and sending none cannot make the server allocate for them.  Buffers of whole
bodies are reused through a small pool (:class:`BodyBudget`): glibc would otherwise keep
every freed 1 MiB buffer in its per-thread arenas.  A pooled buffer is memory the server
holds anyway, so a body takes one that fits at once, with no doubling and no copy.

Two framings are read this way: a ``Content-Length`` body up to ``--buffer-body-size``,
received straight into its buffer, and every chunked body, decoded as it arrives.  A
chunked body is held in memory while its decoded size stays within ``--buffer-body-size``
and the budget has room; past either, it moves to a temporary file (spool.py) and the rest
is written there, so its size is bounded only by ``--max-body-size`` (413 beyond, from the
chunked reader).  Either way the application gets it whole, with a ``CONTENT_LENGTH``:
frameworks such as Django read only that, and a streamed chunked body reached them empty.
A ``Content-Length`` body that would overrun the budget is handed to the application as a
stream with what was read so far (:class:`Handover`): it has a length already.

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
    Framing,
    Limits,
    ReceiveBuffer,
    Request,
)
from kakehashi.server.threads.spool import Spool

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_CHUNKED = Framing.CHUNKED

__all__ = ["BodyBudget", "Handover", "ParkedBody"]

# A fresh buffer has room for what already arrived plus this much; it doubles from there.
_FIRST_ROOM = 4096
# Once 1/_WHOLE_AFTER of a body is here, its buffer gets the whole length (one copy, no more
# doubling): a client can make the server hold at most _WHOLE_AFTER times what it sent.
_WHOLE_AFTER = 10
_RECV_BYTES = 256 * 1024
# Freed buffers of at least _POOL_MIN bytes are kept for the next bodies, up to
# _POOL_COUNT of them and _POOL_BYTES in all; a kept buffer serves a body of half its size
# or more.
_POOL_MIN = 64 * 1024
_POOL_COUNT = 16
_POOL_BYTES = 16 << 20


class BodyBudget:
    """Bytes held by all parked bodies of one server, against a limit; and the pool of
    buffers freed bodies left (bounded apart from the limit, by _POOL_COUNT and _POOL_BYTES)."""

    __slots__ = ("_lock", "_pool", "limit", "pooled", "used")

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.used = 0
        self._pool: list[bytearray] = []
        self.pooled = 0  # bytes in the pool

    def buffer(self, size: int, new: bool = True) -> bytearray | None:
        """A buffer of at least ``size`` bytes (and at most twice that): a pooled one, or
        with ``new`` a new one (else None)."""
        with self._lock:
            for i in range(len(self._pool) - 1, -1, -1):
                if size <= len(self._pool[i]) <= 2 * size:
                    buf = self._pool.pop(i)
                    self.pooled -= len(buf)
                    return buf
        return bytearray(size) if new else None

    def recycle(self, buf: bytearray) -> None:
        """Keep a buffer no body uses any more for the next, if the pool has room."""
        size = len(buf)
        if size < _POOL_MIN:
            return
        with self._lock:
            if len(self._pool) < _POOL_COUNT and self.pooled + size <= _POOL_BYTES:
                self._pool.append(buf)
                self.pooled += size

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
    """A ``Content-Length`` body that cannot be held: the application streams it, starting
    with ``prefix`` (the bytes already read), then ``remaining`` bytes from the socket."""

    prefix: bytes
    remaining: int


class ParkedBody:
    """One body being read ahead of its application.

    Attributes:
        started: when the body started (monotonic), for the minimum rate.
        progressed: when a byte of it last arrived.
        hand_over: a ``Content-Length`` body cannot be held here, the budget ran out; the
            application must stream it (:meth:`handover`).  Never set for a chunked body.
        spool: the file a chunked body moved to once it outgrew memory (else None).
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
        "spool",
        "started",
    )

    def __init__(
        self, request: Request, first: bytes, budget: BodyBudget, limits: Limits, limit: int
    ) -> None:
        self.request = request
        self._budget = budget
        self._limit = limit  # the largest decoded chunked body held in memory
        self._held = 0
        self.hand_over = False
        self.spool: Spool | None = None
        self.started = self.progressed = time.monotonic()
        self._raw = ReceiveBuffer()
        self._buf = bytearray()
        self._got = 0
        if request.framing is _CHUNKED:
            self.length: int | None = None
            self._reader: ChunkedReader | None = ChunkedReader(limits)
            self._raw.append(first)
        else:
            self.length = request.content_length or 0
            self._reader = None
            self._got = len(first)
            # A pooled buffer is memory already held: a body gets one at once, whatever it
            # sent so far; a new buffer for the whole length only once it sent enough.
            if not self._take_whole(self.length, first, new=self._fast()):
                self._buf += first
                self.hand_over = not self._reserve(len(first)) or not self._grow()

    @property
    def received(self) -> int:
        """Body bytes received so far (decoded, for chunked)."""
        return self._got

    def _reserve(self, count: int) -> bool:
        if not self._budget.take(count):
            return False
        self._held += count
        return True

    def _grow(self) -> bool:
        """Room for more of a Content-Length body, within the budget: the whole length once
        the client sends fast, else twice the buffer (then hand_over if the budget is out)."""
        length = self.length
        assert length is not None
        have = len(self._buf)
        if self._take_whole(length, self._buf, new=self._fast()):
            return True
        want = min(length, max(have * 2, self._got + _FIRST_ROOM))
        if want > have:
            if not self._reserve(want - have):
                self.hand_over = True
                return False
            self._buf += bytes(want - have)
        return True

    def _fast(self) -> bool:
        """Whether enough of the body is here for it to be given the whole length."""
        assert self.length is not None
        return self._got * _WHOLE_AFTER >= self.length

    def _take_whole(self, length: int, received: bytes | bytearray, new: bool = True) -> bool:
        """Move the body (``received``, its first bytes) into a buffer for all of it, pooled
        if one fits, else (with ``new``) a new one; False, nothing changed, if there is none
        or the budget cannot hold it."""
        buf = self._budget.buffer(length, new)
        if buf is None:
            return False
        extra = len(buf) - len(self._buf)
        if not self._budget.take(extra):
            self._budget.recycle(buf)
            return False
        self._held += extra
        got = self._got
        if got:
            with memoryview(received) as old:
                buf[:got] = old[:got]
        # The doubled buffer it leaves is not pooled: pooled ones serve whole bodies, and a
        # pool full of odd sizes would leave every whole body a new allocation.
        self._buf = buf
        return True

    def complete(self) -> bool:
        """Whether the whole body is here (for chunked: decodes what arrived first).

        Raises:
            RemoteProtocolError: a chunked body broke its framing, or passed
                ``--max-body-size`` (413).
            OSError: a chunked body's spool file could not be created or written.
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
            end = min(len(self._buf), self.length)  # a pooled buffer may be longer
            if end == self._got:
                if not self._grow():
                    return 0  # the budget ran out before reading: hand_over is set
                end = min(len(self._buf), self.length)
            with memoryview(self._buf) as view:  # the buffer grows later: no view outlives
                count = sock.recv_into(view[self._got : end])
            self._got += count
        if count:
            self.progressed = time.monotonic()
        return count

    def _decode(self) -> bool:
        reader = self._reader
        assert reader is not None
        while True:
            event = reader.read(self._raw)
            if not isinstance(event, Data):
                # Nothing staged is left for the next turn: between turns a spooled body
                # holds no memory but what the socket gave and the decoder has not used.
                if self.spool is not None:
                    self.spool.write_stage()
                return event is not None
            data = event.data
            self._got += len(data)
            if self.spool is not None:
                self.spool.add(data)
            elif self._got <= self._limit and self._reserve(len(data)):
                self._buf += data
            else:
                self._move_to_spool(data)

    def _move_to_spool(self, data: bytes) -> None:
        """The chunked body outgrew memory (``--buffer-body-size``, or the budget): what it
        holds and ``data`` go to a temporary file, and the budget is given back."""
        spool = Spool()
        self.spool = spool
        if self._buf:
            spool.add(self._buf)
        spool.add(data)
        self._buf = bytearray()
        self.release()

    def body(self) -> bytearray:
        """The buffer holding the complete body in its first :attr:`received` bytes (once
        :meth:`complete` said so; empty if the body is in :attr:`spool`); the budget is
        given back.  :meth:`recycle` it after use."""
        self.release()
        return self._buf

    def recycle(self) -> None:
        """The body is no longer used (no view of its buffer, no reader of its spool may
        remain): pool the buffer, close the spool file."""
        buf, self._buf = self._buf, bytearray()
        self._budget.recycle(buf)
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def handover(self) -> Handover:
        """What the application must stream: the bytes so far, then the rest of the body."""
        assert self.length is not None, "a chunked body is never handed over"
        self.release()
        with memoryview(self._buf) as view:
            prefix = view[: self._got].tobytes()
        self.recycle()
        return Handover(prefix, self.length - self._got)

    def leftover(self) -> bytes:
        """Bytes received after a chunked body: the start of a pipelined next request."""
        return bytes(self._raw)

    def release(self) -> None:
        """Give the held bytes back to the budget (idempotent)."""
        if self._held:
            self._budget.give(self._held)
            self._held = 0

    def discard(self) -> None:
        """The body will not be used (its connection closed): give back what it holds."""
        self.release()
        self.recycle()
