"""WebSocketSession: one WebSocket on the asyncio engine, from the upgrade request to the end.

A connection whose request asks for a WebSocket (``websocket.is_websocket_request`` on the
head ``http1`` parsed once) hands itself to :func:`start_websocket`: the request is checked
with the core's ``read_upgrade_request`` (a refusal is a plain HTTP response), the
application runs with the ``websocket`` scope, and from then on the connection's bytes come
here.  What the application sends is checked by ``kakehashi.asgi.WebSocketCycle``; frames,
limits and permessage-deflate are the core's (``kakehashi.websocket``).

No peer can stall or bloat it (docs/websocket.md, "Settings and limits"):

1. Inbound: at most ``--ws-max-queue`` messages wait for the application; above it the core
   is not asked for more and reading pauses, so TCP pushes back on that client alone.  One
   message is bounded by ``--ws-max-size`` in the core (1009), inflation included.
2. Outbound: ``send()`` waits while the transport holds more than its high-water mark; a
   reader that stalls past ``--send-timeout`` or crawls below ``--send-min-rate`` is cut by
   the connection's sweep, and the application's ``receive()`` gets code 1008.
3. Pings every ``--ws-ping-interval``; a pong missing after ``--ws-ping-timeout`` frees the
   connection (the application sees 1006).  Our Close frame gets ``--ws-close-timeout`` for
   its answer, then the connection is cut.
4. A server-wide budget of deflate contexts (``--ws-deflate-budget``): past it new
   WebSockets are accepted uncompressed, logged once.

Owned by the event loop's thread, like its connection.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kakehashi.asgi import WebSocketCycle, WSPhase, websocket_scope
from kakehashi.errors import HandshakeError, RemoteWebSocketError
from kakehashi.http1 import Request, write_response_head
from kakehashi.server.aio.context import error_logger
from kakehashi.server.aio.wsshared import WebSocketFacts, WebSocketShared
from kakehashi.websocket import (
    BytesMessage,
    CloseReceived,
    ConnectionLost,
    Event,
    Ping,
    Pong,
    TextMessage,
    read_upgrade_request,
    refusal,
)

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_CONNECTING, _OPEN = WSPhase.CONNECTING, WSPhase.OPEN
_CLOSING, _CLOSED = WSPhase.CLOSING, WSPhase.CLOSED

if TYPE_CHECKING:
    from kakehashi.server.aio.connection import HTTPConnection

__all__ = ["WebSocketSession", "start_websocket"]

# Bytes received before the application accepted, above which reading pauses.
_EARLY_MARK = 64 * 1024
# Codes the application sees when the server ended the connection itself.
SLOW_READER = 1008  # policy violation: the peer did not read what it was sent
GONE = 1006  # no Close frame came (a vanished peer, a missed pong, a cut)
_pings = itertools.count(1)


def _where(conn: HTTPConnection) -> str:
    return conn.client[0] if conn.client else "-"


def start_websocket(
    conn: HTTPConnection, request: Request, rest: bytes, scope: dict[str, Any]
) -> None:
    """Serve ``request``, an upgrade to WebSocket, on ``conn``; ``rest`` is what followed
    its head (frames the client sent without waiting for the 101); ``scope``: its HTTP
    scope, which becomes the WebSocket's."""
    ctx = conn.ctx
    shared: WebSocketShared = ctx.ws
    try:
        upgrade = read_upgrade_request(request)
    except HandshakeError as exc:
        error_logger.info("%d for %s: %s", exc.status_hint, _where(conn), exc)
        answer = refusal(exc)
        headers = [*answer.headers, (b"Connection", b"close"), (b"Date", ctx.date)]
        conn.write(write_response_head(answer.status_code, headers) + answer.body)
        conn.close()
        return
    if ctx.stopping:  # the drain has begun: the client should go to another server
        conn.answer(503, "shutting down")
        return
    if ctx.limit and ctx.in_flight >= ctx.limit:
        conn.answer(503, f"more than {ctx.limit} requests in flight")
        return
    scope = websocket_scope(scope, upgrade)
    cycle = WebSocketCycle(
        upgrade, ctx.fields, ctx.date, limits=shared.limits, deflate=shared.deflate_offer()
    )
    session = WebSocketSession(conn, cycle, scope, rest)
    conn.buf = b""
    conn.ws = session
    ctx.in_flight += 1
    ctx.requests += 1
    session.task = task = ctx.loop.create_task(session.run())
    ctx.tasks.add(task)


class WebSocketSession:
    """One WebSocket: the application's ``receive``/``send``, the peer's bytes, the timers."""

    __slots__ = ("bytes_in", "bytes_out", "close_deadline", "conn", "connected", "ctx",
                 "cycle", "deflating", "disconnect", "early", "messages_in", "messages_out",
                 "next_ping", "ping_payload", "ping_sent", "queue", "reported", "scope",
                 "shared", "started", "task", "waiter")  # fmt: skip

    def __init__(
        self, conn: HTTPConnection, cycle: WebSocketCycle, scope: dict[str, Any], rest: bytes
    ) -> None:
        self.conn = conn
        self.ctx = ctx = conn.ctx
        self.shared: WebSocketShared = ctx.ws
        self.cycle = cycle
        self.scope = scope
        self.early = bytearray(rest)  # bytes before the accept, fed to the core after it
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.connected = False  # websocket.connect went to the application
        self.disconnect: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = ctx.loop.time()
        self.close_deadline = 0.0
        self.next_ping = 0.0
        self.ping_sent = 0.0
        self.ping_payload = b""
        self.deflating = False
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.reported = (0, 0, 0, 0)  # the traffic the metrics have been told of

    # -- the peer's side (called by the connection) ------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.disconnect is not None and self.cycle.phase is _CLOSED:
            return
        self.bytes_in += len(data)
        core = self.cycle.conn
        if core is None:
            self.early += data
            if len(self.early) > _EARLY_MARK:
                self.conn.pause()
            return
        core.receive_data(data)
        self._pump()

    def connection_lost(self) -> None:
        """The transport closed: what was read is still delivered, then the disconnect."""
        if self.cycle.conn is not None and self.disconnect is None:
            self._pump(everything=True)
        self._end(GONE, "")
        self._count()
        cycle = self.cycle
        accepted = cycle.accepted is not None
        code = self.disconnect["code"] if accepted and self.disconnect else None
        facts = WebSocketFacts(
            cycle.upgrade.request, self.conn.client, cycle.status or 500,
            self.ctx.loop.time() - self.started, self.messages_in, self.messages_out,
            self.bytes_in, self.bytes_out, code,
        )  # fmt: skip
        self.shared.closed(self, facts)

    def _count(self) -> None:
        """Tell the metrics the traffic since the last time (per tick, and at the end)."""
        metrics = self.shared.metrics
        if metrics is None:
            return
        now = (self.messages_in, self.messages_out, self.bytes_in, self.bytes_out)
        if now != self.reported:
            before = self.reported
            self.reported = now
            metrics.websocket_traffic(*(a - b for a, b in zip(now, before, strict=True)))

    def _pump(self, everything: bool = False) -> None:
        """Turn received bytes into messages while the application's queue has room."""
        cycle, queue, conn = self.cycle, self.queue, self.conn
        room = self.shared.max_queue
        while True:
            told = self.disconnect is not None
            if told:  # after going_away: only the peer's Close frame is still wanted
                if cycle.phase is not _CLOSING:
                    break
            elif not everything and (len(queue) >= room or conn.write_paused):
                # A full queue, or a peer not reading what we send (our pongs would pile
                # up): its bytes wait, and TCP pushes back on it alone.
                break
            try:
                event = cycle.next_event()
            except RemoteWebSocketError as exc:
                error_logger.info("WebSocket %s closed with %d: %s", _where(conn),
                                  exc.close_code, exc)  # fmt: skip
                self._write(cycle.data_to_send())
                self._end(exc.close_code, str(exc))
                conn.close()
                return
            if event is None:
                break
            self._handle(event, told)
        if everything or conn.closing:
            return
        if len(queue) >= room or conn.write_paused:
            conn.pause()
        elif not conn.reading:  # the usual case reads on: no call
            conn.resume()

    def _handle(self, event: Event, told: bool) -> None:
        cls = event.__class__
        cycle = self.cycle
        if cls is TextMessage or cls is BytesMessage:
            self.messages_in += 1
            if not told:  # the application was told it is over: dropped
                self.queue.append(cycle.message(event))  # type: ignore[arg-type]
                self._wake()
        elif cls is Ping:
            self._write(cycle.data_to_send())
        elif cls is Pong:
            self._pong(event.payload)  # type: ignore[union-attr]
        elif cls is CloseReceived:
            self._write(cycle.data_to_send())  # the echo, if we had not closed
            self._end(event.code, event.reason)  # type: ignore[union-attr]
            self.conn.close()  # RFC 6455 §7.1.1: the server closes the TCP connection first
        elif cls is ConnectionLost:
            self._end(GONE, "")
            self.conn.close()

    def writable(self) -> None:
        """The transport's buffer drained below its low-water mark: read on."""
        if not self.conn.reading and self.cycle.conn is not None:
            self._pump()

    def _pong(self, payload: bytes) -> None:
        if self.ping_sent and payload == self.ping_payload:
            now = self.ctx.loop.time()
            self.shared.ping_rtt(now - self.ping_sent)
            self.ping_sent = 0.0
            interval = self.shared.config.ws_ping_interval
            self.next_ping = self.ctx.now + interval if interval else 0.0

    def _end(self, code: int, reason: str) -> None:
        """The connection is over: the cycle is CLOSED, and ``receive()`` returns the
        disconnect (the first one told stays)."""
        self._tell(self.cycle.ended(code, reason))

    def _tell(self, disconnect: dict[str, Any]) -> None:
        if self.disconnect is None:
            self.disconnect = disconnect
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if data and not self.conn.closing:
            self.conn.write(data)
            self.bytes_out += len(data)

    # -- the application's side --------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        queue = self.queue
        while True:
            if queue:
                message = queue.popleft()
                if not self.conn.reading and self.cycle.conn is not None:
                    self._pump()
                return message
            if self.disconnect is not None:
                return self.disconnect
            waiter = self.waiter = self.ctx.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None

    async def send(self, message: Mapping[str, Any]) -> None:
        cycle, conn = self.cycle, self.conn
        before = cycle.phase
        out = cycle.send(message)
        self._write(out)
        phase = cycle.phase
        if before is _CONNECTING and phase is _OPEN:
            self._opened()
        elif phase is _OPEN:
            self.messages_out += 1
            if conn.write_paused:
                await conn.drain()
        elif phase is _CLOSING and before is _OPEN:
            self.close_deadline = self.ctx.now + self.shared.config.ws_close_timeout
        elif phase is _CLOSED and before is not _CLOSED:
            self._end(GONE, "")  # a refusal or a denial went out
            conn.close()

    def _opened(self) -> None:
        ctx, shared = self.ctx, self.shared
        accepted = self.cycle.accepted
        if accepted is not None and accepted.deflate is not None:
            self.deflating = True
        shared.opened(self)
        interval = shared.config.ws_ping_interval
        self.next_ping = ctx.now + interval if interval else 0.0
        early, self.early = bytes(self.early), bytearray()
        if ctx.stopping:  # accepted during the drain: said goodbye at once
            self.going_away(shared.going_away_code)
        if early:
            self.cycle.receive_data(early)
        self._pump()

    async def run(self) -> None:
        """Call the application; whatever happens, the connection ends here."""
        ctx = self.ctx
        failed = False
        try:
            await ctx.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass  # the engine cut it (the end of the grace period)
        except Exception as exc:
            if self.disconnect is not None and isinstance(exc, OSError):
                error_logger.debug("WebSocket %s: the client left (%s)", self.scope["path"], exc)
            else:
                error_logger.error("Exception in ASGI application (WebSocket %s)",
                                   self.scope["path"], exc_info=exc)  # fmt: skip
                failed = True
        finally:
            self._app_ended(failed)
            ctx.in_flight -= 1
            if self.task is not None:
                ctx.tasks.discard(self.task)

    def _app_ended(self, failed: bool) -> None:
        cycle, conn = self.cycle, self.conn
        before = cycle.phase
        out = cycle.app_ended(failed)
        if out is None:
            conn.abort()  # a denial cut short must not look complete
            self._end(GONE, "")
            return
        self._write(out)
        if cycle.phase is _CLOSING:  # our Close frame: the peer's answer is awaited
            if before is _OPEN:
                self.close_deadline = self.ctx.now + self.shared.config.ws_close_timeout
            return
        self._end(GONE, "")
        conn.close()

    # -- the server's side -------------------------------------------------------------------

    def going_away(self, code: int) -> None:
        """Shutdown: our Close frame with ``code`` (1001, 1012 for a restart); the
        application's ``receive()`` returns the disconnect with that code at once."""
        cycle = self.cycle
        if cycle.phase is not _OPEN:
            return
        self._write(cycle.close(code, "server shutting down"))
        self.close_deadline = self.ctx.now + self.shared.config.ws_close_timeout
        # Told at once, while the close handshake goes on: the application cleans up now.
        self._tell({"type": "websocket.disconnect", "code": code, "reason": "server shutting down"})

    def dropped(self, reason: str) -> None:
        """The connection's sweep cut a reader that stalled or crawled (--send-timeout,
        --send-min-rate)."""
        self._end(SLOW_READER, f"slow reader: {reason}")

    def check(self, now: float) -> None:
        """Once a tick: the close handshake's deadline, the keepalive ping and its pong."""
        phase = self.cycle.phase
        conn = self.conn
        self._count()
        if conn.closing:
            return
        if phase is _CLOSING:
            if now >= self.close_deadline:
                error_logger.info("WebSocket %s: no answer to our Close frame; cut", _where(conn))
                self._end(GONE, "close handshake timed out")
                conn.abort()
            return
        if phase is not _OPEN:
            return
        config = self.shared.config
        if self.ping_sent:
            if config.ws_ping_timeout and now - self.ping_sent >= config.ws_ping_timeout:
                error_logger.info("WebSocket %s: no pong within %gs; closed", _where(conn),
                                  config.ws_ping_timeout)  # fmt: skip
                self._end(GONE, "keepalive ping timeout")
                self._write(self.cycle.close(1011, "keepalive ping timeout"))
                conn.abort()
        elif self.next_ping and now >= self.next_ping:
            self.ping_payload = b"%d" % next(_pings)
            self._write(self.cycle.ping(self.ping_payload))
            self.ping_sent = self.ctx.loop.time()
