"""Keep-alive connections, kept per origin and handed out one request at a time.

What it does: holds idle connections (a :class:`Stream` with its ``http1.Connection``) per
``(scheme, host, port)``, hands one out for the next request, and takes it back when the
response has been read to its end.  It bounds how many connections may be open per origin
(``PoolTimeout`` when none frees up in time) and how many idle ones are kept.

What it must not do: open connections (the transport does), speak HTTP, or decide whether a
connection may be reused (``http1.Connection.is_reusable`` decides; the pool only checks
that nothing arrived on an idle connection and that it is not too old).

Invariants:
    * A connection is owned by exactly one of: the pool (idle), one request (active), or
      nobody (closed).  Idle connections are always ready for a new request cycle.
    * A stale idle connection (the peer closed it, sent something unasked, or it idled
      longer than ``keepalive_expiry``) is closed, never handed out.
    * Thread-safe: one lock guards the idle lists and the counts.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

from kakehashi import http1
from kakehashi.client.transport import Stream
from kakehashi.errors import PoolTimeout

__all__ = ["Origin", "Pool", "PooledConnection"]

logger = logging.getLogger(__name__)

Origin = tuple[str, str, int]
_ids = itertools.count(1)


@dataclass(eq=False)
class PooledConnection:
    """One open connection and its HTTP/1.1 state."""

    origin: Origin
    stream: Stream
    conn: http1.Connection
    id: int = field(default_factory=lambda: next(_ids))
    requests: int = 0
    idle_since: float = 0.0

    def close(self) -> None:
        """Close the stream; harmless if already closed."""
        self.stream.close()


class Pool:
    """Idle connections per origin, with a bound on open connections per origin.

    Args:
        max_per_origin: at most this many connections open at once to one origin.
        max_idle_per_origin: at most this many idle connections kept per origin.
        keepalive_expiry: seconds an idle connection is kept before it is closed.
    """

    def __init__(
        self,
        max_per_origin: int = 10,
        max_idle_per_origin: int = 10,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self.max_per_origin = max_per_origin
        self.max_idle_per_origin = max_idle_per_origin
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, list[PooledConnection]] = {}
        self._open: dict[Origin, int] = {}
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self, origin: Origin, timeout: float) -> PooledConnection | None:
        """An idle connection to reuse, or None after reserving room to open a new one.

        After None, the caller opens a connection and later releases or discards it, or, if
        opening failed, calls :meth:`cancel` to give the reservation back.

        Raises:
            PoolTimeout: ``max_per_origin`` connections stayed busy for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        stale: list[PooledConnection] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise RuntimeError("the client is closed")
                    pooled = self._take_idle(origin, stale)
                    if pooled is not None:
                        return pooled
                    if self._open.get(origin, 0) < self.max_per_origin:
                        self._open[origin] = self._open.get(origin, 0) + 1
                        return None
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise PoolTimeout(f"no free connection to {origin[1]} in {timeout:g} s")
                    self._cond.wait(left)
        finally:
            for conn in stale:
                conn.close()

    def _take_idle(self, origin: Origin, stale: list[PooledConnection]) -> PooledConnection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            pooled = idle.pop()
            if now - pooled.idle_since > self.keepalive_expiry or pooled.stream.is_readable():
                logger.debug("dropping stale connection #%d to %s", pooled.id, origin[1])
                self._open[origin] -= 1
                stale.append(pooled)
                continue
            return pooled
        return None

    def cancel(self, origin: Origin) -> None:
        """Give back a reservation whose connection could not be opened."""
        self._forget(origin)

    def release(self, pooled: PooledConnection) -> None:
        """Take back a connection whose response was read to the end.

        Reusable connections go idle; others are closed.
        """
        conn = pooled.conn
        keep = conn.is_reusable and not conn.trailing_data[0] and not conn.trailing_data[1]
        if keep:
            conn.start_next_cycle()
            with self._cond:
                idle = self._idle.setdefault(pooled.origin, [])
                if not self._closed and len(idle) < self.max_idle_per_origin:
                    pooled.idle_since = time.monotonic()
                    idle.append(pooled)
                    self._cond.notify()
                    return
        self.discard(pooled)

    def discard(self, pooled: PooledConnection) -> None:
        """Close a connection that must not be reused."""
        pooled.close()
        self._forget(pooled.origin)

    def _forget(self, origin: Origin) -> None:
        with self._cond:
            self._open[origin] = max(0, self._open.get(origin, 0) - 1)
            self._cond.notify()

    def idle_count(self, origin: Origin | None = None) -> int:
        """How many idle connections are kept (for one origin, or in all)."""
        with self._cond:
            if origin is not None:
                return len(self._idle.get(origin, ()))
            return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        """Close every idle connection; active ones are closed when they are released."""
        with self._cond:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
            self._open.clear()
            self._cond.notify_all()
        for pooled in idle:
            pooled.close()
