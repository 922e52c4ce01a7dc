"""SharedContext: what every connection of one server shares, whatever the engine.

No sockets here.  Holds the configuration and limits, the access log, the metrics recorder,
the shutdown flags and the cached ``Date`` header.  An engine's own context extends it with
what only that engine needs (threads/context.py).  Read-only after start, except the date
cache, whose update is a single attribute assignment (atomic under the GIL) and at worst
computed twice in the same second, and the two shutdown fields, each set once.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from kakehashi.http1 import HeadCache, Limits
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.observe.accesslog import AccessLog, RequestReader
from kakehashi.server.observe.metrics import Recorder

__all__ = ["SharedContext"]


class SharedContext:
    """Shared, read-mostly state of one server.  Built by the server before it serves."""

    __slots__ = (
        "_date",
        "_date_second",
        "access",
        "config",
        "heads",
        "limits",
        "linger_until",
        "metrics",
        "stopping",
    )

    def __init__(self, config: ServerConfig, reader: RequestReader) -> None:
        self.config = config
        self.limits: Limits = config.limits
        self.heads = HeadCache(self.limits)  # request heads seen before (http1/_head.py)
        self.metrics: Recorder | None = None  # set by the server with --metrics-bind
        self.stopping = False  # set once by the server's shutdown; read by every connection
        # On shutdown, idle connections are still served until then (set before stopping).
        self.linger_until = 0.0
        # The engine says how its access lines read its requests (observe/accesslog.py).
        self.access = AccessLog(reader, config.access_log_format, config.access_log)
        self._date_second = 0
        self._date = b""

    def date_header(self) -> bytes:
        """``Date`` in IMF-fixdate (RFC 9110 §5.6.7), formatted at most once a second."""
        now = int(time.time())
        if now != self._date_second:
            self._date = formatdate(now, usegmt=True).encode("ascii")
            self._date_second = now
        return self._date
