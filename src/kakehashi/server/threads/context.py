"""ServerContext: what every connection of one server shares, read-only after start.

No sockets here.  Holds the application, the configuration and limits, the environ builder,
the loggers, and the cached ``Date`` header.  Worker threads only read it, except for the
date cache, whose update is a single attribute assignment (atomic under the GIL) and at
worst computed twice in the same second.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from kakehashi.http1 import Limits
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.observe.accesslog import AccessLog
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.threads.parked_body import BodyBudget
from kakehashi.server.threads.watch import RequestWatch
from kakehashi.wsgi import EnvironBuilder, HeadCache, WSGIApp

__all__ = ["ServerContext"]


class ServerContext:
    """Shared, read-mostly state of one server.  Built by the Server before its threads."""

    __slots__ = (
        "_date",
        "_date_second",
        "access",
        "app",
        "body_budget",
        "config",
        "environ",
        "head_cache",
        "limits",
        "linger_until",
        "metrics",
        "stopping",
        "watch",
    )

    def __init__(self, app: WSGIApp, config: ServerConfig, environ: EnvironBuilder) -> None:
        self.app = app
        self.config = config
        self.limits: Limits = config.limits
        self.environ = environ
        self.head_cache = HeadCache()
        self.body_budget = BodyBudget(config.parked_body_budget)
        # Only --request-timeout reads it: without one, requests are not tracked at all.
        self.watch = RequestWatch() if config.request_timeout else None
        self.metrics: Recorder | None = None  # set by the Server with --metrics-bind
        self.stopping = False  # set once by the server's shutdown; read by every thread
        # On shutdown, idle connections are still served until then (set before stopping).
        self.linger_until = 0.0
        self.access = AccessLog(config.access_log_format, config.access_log)
        self._date_second = 0
        self._date = b""

    def date_header(self) -> bytes:
        """``Date`` in IMF-fixdate (RFC 9110 §5.6.7), formatted at most once a second."""
        now = int(time.time())
        if now != self._date_second:
            self._date = formatdate(now, usegmt=True).encode("ascii")
            self._date_second = now
        return self._date
