"""WebSocketShared: what every WebSocket of one asyncio server shares.

No sockets here.  The settings turned into the core's limits once, the budget of deflate
contexts, the open sessions (for the drain) and the counters operators read.  Owned by the
event loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kakehashi.http1 import Request
from kakehashi.server.aio._shared import ServerConfig, error_logger
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.observe.wsaccess import WebSocketCounts
from kakehashi.websocket import DeflateSettings, Limits

if TYPE_CHECKING:
    from kakehashi.server.aio.websocket import WebSocketSession

__all__ = ["WebSocketFacts", "WebSocketShared"]


@dataclass(slots=True)
class WebSocketFacts:
    """One WebSocket connection that ended, as the access log wants it (``AccessLog.websocket``
    with :meth:`counts`): ``status`` 101 once accepted (else the refusal's: 403, a denial's
    status, 500), ``close_code`` the code the application saw (None if never accepted)."""

    request: Request
    peer: tuple[str, int] | None
    status: int
    duration: float
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    close_code: int | None

    def counts(self) -> WebSocketCounts:
        return (self.messages_in, self.messages_out, self.bytes_in, self.bytes_out,
                self.close_code)  # fmt: skip


class WebSocketShared:
    """Shared, loop-owned state of one server's WebSockets."""

    __slots__ = ("_budget_logged", "_deflate", "compressing", "config", "going_away_code",
                 "limits", "max_queue", "metrics", "opened_total", "ping_rtts", "report",
                 "sessions")  # fmt: skip

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.limits = Limits(max_message_bytes=config.ws_max_size)
        self.max_queue = config.ws_max_queue
        on = config.ws_per_message_deflate and config.ws_deflate_budget > 0
        self._deflate = DeflateSettings() if on else None
        self._budget_logged = False
        self.compressing = 0  # open WebSockets holding a deflate context
        self.sessions: set[WebSocketSession] = set()  # accepted and not ended
        self.opened_total = 0
        self.going_away_code = 1001  # the drain's close code; 1012 for a restart
        self.ping_rtts: list[float] = []  # the last round trips, newest last (bounded)
        self.metrics: Recorder | None = None
        # Where an ended WebSocket's facts go (the access log); None costs nothing.
        self.report: Callable[[WebSocketFacts], None] | None = None

    def deflate_offer(self) -> DeflateSettings | None:
        """Compression for a new WebSocket, or None past the budget (logged once)."""
        if self._deflate is None:
            return None
        if self.compressing >= self.config.ws_deflate_budget:
            if not self._budget_logged:
                self._budget_logged = True
                error_logger.warning(
                    "%d WebSockets compress already (--ws-deflate-budget): new ones are "
                    "accepted uncompressed until some close (logged once)",
                    self.compressing,
                )
            return None
        return self._deflate

    def opened(self, session: WebSocketSession) -> None:
        self.sessions.add(session)
        self.opened_total += 1
        if session.deflating:
            self.compressing += 1
        if self.metrics is not None:
            self.metrics.websocket_opened()

    def closed(self, session: WebSocketSession, facts: WebSocketFacts) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            if session.deflating:
                self.compressing -= 1
            if self.metrics is not None and facts.close_code is not None:
                self.metrics.websocket_closed(facts.close_code)
        if self.report is not None:
            self.report(facts)

    def ping_rtt(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.ping_rtt(seconds)
        rtts = self.ping_rtts
        rtts.append(seconds)
        if len(rtts) > 256:
            del rtts[:128]
