"""AioContext: what every connection of the asyncio engine shares.

No sockets here.  Owned by the event loop's thread: connections read it and change the
counters (``in_flight``, ``connections``); the engine's periodic sweep refreshes ``now`` and
``date`` once per tick, so the request path reads no clock.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from kakehashi.asgi import ASGIApp, FieldCache, ScopeBuilder
from kakehashi.http1 import HeadCache, Limits
from kakehashi.server.aio._shared import AccessLog, Recorder, ServerConfig, error_logger
from kakehashi.server.aio.wsshared import WebSocketShared

if TYPE_CHECKING:
    from kakehashi.server.aio.connection import HTTPConnection

__all__ = ["AioContext", "error_logger"]

_READ_BYTES = 256 * 1024


class AioContext:
    """Shared, loop-owned state of one asyncio server."""

    __slots__ = (
        "access",
        "app",
        "config",
        "connections",
        "date",
        "drained",
        "fields",
        "goodbye",
        "heads",
        "in_flight",
        "last_accept",
        "limit",
        "limits",
        "linger_until",
        "loop",
        "metrics",
        "native_sendfile",
        "now",
        "progress",
        "read_view",
        "recorded",
        "requests",
        "scheme",
        "scopes",
        "state",
        "stopping",
        "tasks",
        "ws",
    )

    def __init__(
        self,
        app: ASGIApp,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        scopes: ScopeBuilder,
        scheme: str,
        access: AccessLog,
    ) -> None:
        self.app = app
        self.config = config
        self.loop = loop
        self.limits: Limits = config.limits
        self.heads = HeadCache(self.limits)  # request heads seen before (http1/_head.py)
        self.scopes = scopes
        self.scheme = scheme
        self.fields = FieldCache()
        self.state: dict[str, Any] = {}  # the lifespan state, copied into each scope
        self.connections: set[HTTPConnection] = set()
        self.in_flight = 0  # application calls running (a response may be done already)
        self.tasks: set[asyncio.Task[None]] = set()  # those calls, for the shutdown
        self.limit = config.limit_concurrency  # 0: no limit
        self.stopping = False
        self.goodbye = False  # responses say Connection: close (shutdown, --shutdown-delay)
        self.requests = 0  # requests handed to the application (--max-requests)
        self.linger_until = 0.0
        self.last_accept = 0.0
        self.drained: asyncio.Future[None] | None = None  # set by the server while draining
        # asyncio's own loop sends files with os.sendfile; uvloop has no loop.sendfile.
        self.native_sendfile = isinstance(loop, asyncio.BaseEventLoop)
        # Where a finished request's facts go (record.py); set by the server.
        self.access = access
        self.metrics: Recorder | None = None
        self.recorded = access.enabled  # or metrics: a request's end is recorded
        self.ws = WebSocketShared(config)  # what every WebSocket shares (websocket.py)
        # Where asyncio's own loop reads every connection's bytes (connection.py,
        # BufferedHTTPConnection): one buffer for the loop, since each read is copied out
        # before the next can start.  As much as asyncio reads at once.
        self.read_view = memoryview(bytearray(_READ_BYTES))
        self.now = loop.time()
        self.progress = 0  # bumped as the loop works; read by the watchdog's thread
        self.date = b""
        self.tick()

    def tick(self) -> None:
        """Refresh the coarse clock and the Date value (the sweep calls this each tick)."""
        self.progress += 1
        self.now = self.loop.time()
        self.date = formatdate(time.time(), usegmt=True).encode("ascii")

    def bump(self) -> None:
        """The watchdog's probe ran: the loop is not blocked."""
        self.progress += 1

    def connection_closed(self, conn: HTTPConnection) -> None:
        self.connections.discard(conn)
        if self.drained is not None and not self.connections and not self.drained.done():
            self.drained.set_result(None)
