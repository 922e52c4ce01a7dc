"""AsyncServer: ASGI applications on one asyncio event loop per process.

Installs no signal handlers (the CLI does) and never exits the process.  Its life
(docs/asgi.md, "Shutdown order"):

1. Lifespan startup, before anything is accepted; a refusal ends the server
   (:class:`~kakehashi.server.aio.lifespan.LifespanFailed`).
2. Serving: one ``asyncio.Protocol`` per connection (connection.py); a sweep once a tick
   (no timer per request) enforces every timeout; the loop watchdog says when an
   application blocks the loop.
3. Shutdown (:meth:`request_shutdown`, safe from a signal handler): responses not started
   say ``Connection: close``; the kernel drops new SYNs (net/handshakes.py) and the
   connections it holds are still accepted until none came for 100 ms and none is pending
   (at most the linger, 1 s at least), then the listeners close; idle connections
   are served until ``--shutdown-linger`` and then closed; what was received, pipelined
   requests too, is answered within ``--graceful-timeout``; past it every connection is cut
   and every application call cancelled; then the lifespan shutdown, bounded.  The loop ends
   within the grace period plus 0.5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kakehashi.asgi import ASGIApp
from kakehashi.errors import ConfigError
from kakehashi.server.aio._shared import (
    Recorder,
    ServerConfig,
    TrustedPeers,
    accept_at_handshake,
    bind_sockets,
    bound_addresses,
    dropped_lines,
    handshakes_pending,
    make_context,
    refuse_new_handshakes,
    restore_logs,
    server_metrics,
)
from kakehashi.server.aio.connection import BufferedHTTPConnection, ConnPhase, HTTPConnection
from kakehashi.server.aio.context import AioContext, error_logger
from kakehashi.server.aio.lifespan import Lifespan
from kakehashi.server.aio.loops import new_loop
from kakehashi.server.aio.proxies import ProxiedScopeBuilder
from kakehashi.server.aio.proxyproto import BufferedProxiedConnection, ProxiedConnection
from kakehashi.server.aio.record import access_log, websocket_reporter
from kakehashi.server.aio.watchdog import LoopWatchdog

__all__ = ["EXTENSIONS", "AsyncServer"]

# What every HTTP scope offers (asgiref extensions.rst); "tls" is added per TLS connection.
EXTENSIONS: dict[str, Any] = {
    "http.response.trailers": {},
    "http.response.early_hint": {},
    "http.response.pathsend": {},
}
# Shutdown: the kernel's queue is accepted until no connection came for this long...
_ACCEPT_QUIET = 0.1
# ...but no longer than this.
_ACCEPT_AT_MOST = 1.0
_DRAIN_TICK = 0.05  # the sweep's tick while draining, so idle connections go on time


class AsyncServer:
    """An ASGI server; an engine as ``server/engine/contract.py`` describes one.

    Args:
        app: an ASGI 3 application (``kakehashi.asgi.as_asgi3`` adapts ASGI 2 ones).
        config: the settings; ``loop``, ``loop_watchdog`` and ``limit_concurrency`` are
            this engine's own.
        sockets: listening sockets to use instead of binding ``config.bind``; closed by the
            server when it stops.
        shared_listeners: the listeners are shared with other processes (pre-fork
            workers): on shutdown, new handshakes are not refused for all of them.
        metrics: a pre-fork worker's metrics recorder (its parent serves /metrics); else
            ``--metrics-bind`` gives the server a recorder and a listener of its own.

    Raises:
        ConfigError: the loop asked for is not installed, an address (or
            ``--metrics-bind``) cannot be bound, or the TLS files cannot be loaded.
    """

    # Each request's task, futures and messages are promoted into the collector's oldest
    # generation while in flight; its full passes walked the whole heap (engine/heap.py).
    freezes_heap = True

    def __init__(
        self,
        app: ASGIApp,
        config: ServerConfig | None = None,
        *,
        sockets: list[socket.socket] | None = None,
        shared_listeners: bool = False,
        metrics: Recorder | None = None,
    ) -> None:
        self.config = config = config or ServerConfig()
        # Listeners shared with other processes go on accepting in them: not filtered here.
        self._shared_listeners = shared_listeners
        self.loop, self.loop_name = new_loop(config.loop)
        self._metrics_http = None
        try:
            recorder, self._metrics_http = server_metrics(config, metrics)
            self._tls = make_context(config) if config.tls else None
            if sockets is None:
                sockets = bind_sockets(config.addresses, config.backlog, config.reuse_port)
        except ConfigError:
            if self._metrics_http is not None:
                self._metrics_http.release()
            self.loop.close()
            raise
        self.sockets = sockets
        if self.loop_name == "uvloop":  # one accept a pass of its loop (net/bind.py)
            for sock in sockets:
                accept_at_handshake(sock)
        first = sockets[0].getsockname()
        server: tuple[str, int | None] = (
            (first[0], first[1]) if isinstance(first, tuple) else (str(first), None)
        )
        scheme = "https" if self._tls is not None else config.url_scheme
        trusted = TrustedPeers(config.forwarded_allow_ips)
        scopes = ProxiedScopeBuilder(server, config.root_path, EXTENSIONS, trusted)
        access = access_log(config.access_log_format, config.access_log)
        self.ctx = ctx = AioContext(app, config, self.loop, scopes, scheme, access)
        if access.enabled:  # one line per WebSocket, when it closes
            ctx.ws.report = websocket_reporter(access)
        if recorder is not None:
            ctx.metrics = recorder
            ctx.recorded = True
            recorder.log_dropped = dropped_lines  # the access log counts its own drops
            recorder.in_flight = self._in_flight
            ctx.ws.metrics = recorder  # the WebSocket figures (wsshared.py)
        # A PROXY protocol header comes before the HTTP bytes (proxyproto.py).
        plain = config.proxy_protocol == "off"
        if self.loop_name == "uvloop":
            self._protocol = HTTPConnection if plain else ProxiedConnection
        else:  # asyncio's own loop: read into one buffer (BufferedHTTPConnection says why)
            self._protocol = BufferedHTTPConnection if plain else BufferedProxiedConnection
        self._progress_seen = (-1, 0.0)  # stuck(): the loop's progress, and when it moved
        self.lifespan = Lifespan(app, self.loop)
        self.ctx.state = self.lifespan.state
        self.watchdog: LoopWatchdog | None = None
        self.started = threading.Event()  # accepting
        self.stopped = threading.Event()
        self.error: BaseException | None = None  # why the server ended early, if it did
        self._grace = config.graceful_timeout
        self._deadline = 0.0  # the drain's end, on the loop's clock (set by _mark_draining)
        self._stop: asyncio.Future[None] = self.loop.create_future()
        self._stop_asked = False
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    @property
    def addresses(self) -> list[str]:
        return bound_addresses(self.sockets)

    # -- the engine contract -----------------------------------------------------------------

    def start(self, on_ready: Callable[[], object] | None = None) -> None:
        """Run the lifespan startup and start listening, on this thread (the loop runs
        until then); accepting on return, unless a stop came during the startup (then
        closed).  Does nothing the second time.  ``on_ready``:
        called after the startup, before the loop runs again to serve (engine/contract.py).

        Raises:
            LifespanFailed: the application refused to start (the sockets are closed).
        """
        if self.started.is_set() or self.stopped.is_set():
            return
        try:
            ready = self.loop.run_until_complete(self._startup())
        except BaseException as exc:
            self.error = exc
            self._close()
            raise
        if not ready:  # stopped during the startup: closed here, once the loop is still
            self._close()
            return
        if on_ready is not None:
            on_ready()

    def serve_forever(self) -> None:
        """Run the loop on this thread until :meth:`request_shutdown`, then shut down."""
        self.start()
        if self.stopped.is_set():
            return
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._close()

    def call_soon(self, work: Callable[[], object]) -> None:
        """Run ``work`` on the loop's thread soon; safe from a signal handler or any thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to do
            self.loop.call_soon_threadsafe(work)

    def request_shutdown(self, restart: bool = False) -> None:
        """Ask the server to shut down gracefully; safe from a signal handler.  ``restart``:
        a replacement takes over (open WebSockets are closed with 1012, not 1001)."""
        if restart:
            self.ctx.ws.going_away_code = 1012
        self._stop_asked = True
        self.call_soon(self._begin_stop)

    def say_goodbye(self) -> None:
        self.ctx.goodbye = True

    def requests_started(self) -> int:
        return self.ctx.requests

    def stuck(self, timeout: float) -> str:
        """The loop itself, when it made no progress for ``timeout`` seconds (``--timeout``;
        from another thread, the worker's heartbeat).  A running loop moves
        ``ctx.progress`` at least once a sweep (at most a second apart), idle or not; so
        a counter that stood still that long means the loop is blocked, and with it every
        request of the process."""
        if not timeout or not self.started.is_set() or self.stopped.is_set():
            return ""
        now = time.monotonic()
        progress = self.ctx.progress
        seen, since = self._progress_seen
        if progress != seen:
            self._progress_seen = (progress, now)
            return ""
        if now - since < timeout:
            return ""
        running = sum(1 for conn in list(self.ctx.connections) if conn.exch is not None)
        return (f"the event loop ({self.loop_name}) made no progress for {now - since:.0f}s, "
                f"{running} request(s) in progress")  # fmt: skip

    def _in_flight(self) -> float:
        """The metrics' in-flight gauge (read from the /metrics thread): connections with a
        request being served, from its head to its response's end."""
        return float(sum(1 for conn in list(self.ctx.connections) if conn.phase is ConnPhase.BUSY))

    # -- for tests and embedding -------------------------------------------------------------

    def run_in_thread(self) -> None:
        """Serve on a thread of its own; returns once accepting.

        Raises:
            LifespanFailed, or whatever else ended the server before it accepted.
        """
        self._thread = threading.Thread(
            target=self._serve_in_thread, name="kakehashi-aio-loop", daemon=True
        )
        self._thread.start()
        while not self.started.wait(0.05):
            if self.stopped.is_set():
                assert self.error is not None
                raise self.error

    def _serve_in_thread(self) -> None:
        with contextlib.suppress(BaseException):  # kept in self.error for run_in_thread()
            self.serve_forever()

    def shutdown(self, timeout: float | None = None) -> None:
        """Shut down from another thread; returns when the loop has ended."""
        if timeout is not None:
            self._grace = timeout
        self.request_shutdown()
        self.stopped.wait(self._grace + 5)
        if self._thread is not None:
            self._thread.join(1.0)

    # -- life ----------------------------------------------------------------------------------

    def _begin_stop(self) -> None:
        if not self._stop.done():
            self._mark_draining()
            self._stop.set_result(None)

    def _close(self) -> None:
        loop = self.loop
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        for sock in self.sockets:
            sock.close()
        metrics = self.ctx.metrics
        if metrics is not None:  # a pre-fork worker's last figures reach its parent
            metrics.publish()
        if self._metrics_http is not None:
            self._metrics_http.close()
        self.ctx.access.flush()  # lines still batched are written before the server ends
        self.stopped.set()

    async def _startup(self) -> bool:
        """The lifespan startup, then the listeners; False if a stop came first."""
        loop = self.loop
        if self._stop_asked:
            self._begin_stop()
        startup = loop.create_task(self.lifespan.startup())
        await asyncio.wait({startup, self._stop}, return_when=asyncio.FIRST_COMPLETED)
        if not startup.done():  # stopped before the application was ready
            startup.cancel()
            await asyncio.gather(startup, return_exceptions=True)
            await self.lifespan.shutdown(0.5)
            return False
        startup.result()  # raises LifespanFailed
        self._servers = [await self._listen(sock) for sock in self.sockets]
        if self.config.loop_watchdog:
            ctx = self.ctx
            self.watchdog = LoopWatchdog(
                loop, self.config.loop_watchdog, lambda: ctx.progress, ctx.bump
            )
            self.watchdog.start()
        self.ctx.access.start()
        if self._metrics_http is not None:
            self._metrics_http.start()
        self._sweep()
        self.started.set()
        return True

    async def _serve(self) -> None:
        try:
            await self._stop
            await self._drain(self._servers)
            await self.lifespan.shutdown(max(0.1, min(self._grace, 5.0)))
        finally:
            if self._sweeper is not None:
                self._sweeper.cancel()
            if self.watchdog is not None:
                self.watchdog.stop()

    async def _listen(self, sock: socket.socket) -> asyncio.Server:
        ctx = self.ctx
        tls: dict[str, Any] = {}
        if self._tls is not None:
            tls = {"ssl": self._tls, "ssl_handshake_timeout": self.config.header_timeout}
        protocol = self._protocol
        return await self.loop.create_server(
            lambda: protocol(ctx), sock=sock, backlog=self.config.backlog, **tls
        )

    @property
    def tick(self) -> float:
        """Seconds between sweeps: fine enough for the shortest timeout, at most 1 s (the
        Date value is refreshed on each)."""
        config = self.config
        if self.ctx.stopping:
            return _DRAIN_TICK
        shortest = min(config.header_timeout, config.keep_alive, config.body_timeout,
                       config.send_timeout, config.ws_close_timeout,
                       config.ws_ping_interval or 60, config.ws_ping_timeout or 60)  # fmt: skip
        return max(0.05, min(1.0, shortest / 4))

    def _sweep(self) -> None:
        ctx = self.ctx
        ctx.tick()
        now = ctx.now
        for conn in list(ctx.connections):
            conn.check(now)
        # As the thread engine's sweeper does: kakehashi's loggers switched back on after an
        # application's logging setup, the access log's flusher started again (its batches
        # wait for it), and a pre-fork worker's figures copied where its parent reads them.
        restore_logs()
        ctx.access.start()
        if ctx.metrics is not None:
            ctx.metrics.publish()
        self._sweeper = self.loop.call_later(self.tick, self._sweep)

    # -- shutdown ----------------------------------------------------------------------------

    def _mark_draining(self) -> None:
        """The drain's first step, taken in the same loop turn as the request to stop: a
        request read after the signal was logged is answered ``Connection: close`` (the
        coroutine that drains wakes a turn or more later, and a starved process can spend
        a while between the two)."""
        loop, ctx, config = self.loop, self.ctx, self.config
        self._deadline = deadline = loop.time() + self._grace
        ctx.linger_until = min(loop.time() + config.shutdown_linger, deadline)
        ctx.stopping = ctx.goodbye = True
        ctx.last_accept = loop.time()
        for conn in ctx.connections:
            exch = conn.exch
            if exch is not None and not exch.cycle.head_sent and not conn.buf:
                exch.cycle.keep_alive = False  # unless requests were pipelined behind it
            if conn.phase is not ConnPhase.BUSY:
                conn.deadline = min(conn.deadline, ctx.linger_until)
            if conn.ws is not None:  # 1001 (1012 for a restart); the application is told
                conn.ws.going_away(ctx.ws.going_away_code)
        if self._sweeper is not None:  # from now on at the draining tick
            self._sweeper.cancel()
            self._sweep()

    async def _drain(self, servers: list[asyncio.Server]) -> None:
        loop, ctx, deadline = self.loop, self.ctx, self._deadline
        await self._accept_what_is_under_way(deadline)
        for server in servers:
            server.close()
        if ctx.connections:
            ctx.drained = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await ctx.drained
            except TimeoutError:
                error_logger.warning(
                    "%d requests still running after %gs; closing them",
                    len(ctx.connections), self._grace,
                )  # fmt: skip
                for conn in list(ctx.connections):
                    conn.abort()
        await self._finish_tasks(deadline)

    async def _accept_what_is_under_way(self, deadline: float) -> None:
        """New SYNs are dropped (net/handshakes.py); the connections the kernel holds are
        still accepted (by the listeners, as before) until none came for 100 ms and none is
        pending in the kernel: with TCP_DEFER_ACCEPT one stays there until its client's first
        bytes, as late as it likes, so the wait lasts up to the idle connections' linger (1 s
        at least).  Shared listeners are left to the other processes."""
        if self._shared_listeners:
            return
        loop, ctx = self.loop, self.ctx
        filtered = False
        for sock in self.sockets:
            filtered = refuse_new_handshakes(sock) or filtered
        start = loop.time()
        give_up = min(max(ctx.linger_until, start + _ACCEPT_AT_MOST), deadline)
        while loop.time() < give_up:
            # Asked before the loop accepts again (the sleep): a connection that left the
            # kernel's pending state before this look is in the backlog and accepted during
            # the sleep; one that leaves it after was pending.  Looking after the sleep and
            # leaving at once would miss the first kind: accepted by no one, then reset when
            # the listener closes (test_shutdown.py, ...after_the_signal_is_answered).
            pending = filtered and handshakes_pending(self.sockets)
            await asyncio.sleep(0.01)
            if loop.time() - ctx.last_accept >= _ACCEPT_QUIET and not pending:
                return

    async def _finish_tasks(self, deadline: float) -> None:
        """Application calls still running (work after their response) get until the
        deadline; then they are cancelled."""
        tasks = self.ctx.tasks
        if tasks:
            await asyncio.wait(set(tasks), timeout=max(0.0, deadline - self.loop.time()))
        if tasks:
            error_logger.warning("cancelling %d application call(s) still running", len(tasks))
            for task in list(tasks):
                task.cancel()
            await asyncio.wait(set(tasks), timeout=0.2)
