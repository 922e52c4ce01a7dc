"""Server: binds, runs the worker threads, and shuts down gracefully.

This module installs no signal handlers (the CLI does) and never exits the process.
Shutdown order (docs/design.md): stop accepting; close parked connections; let requests in
flight finish within the grace period (their responses say ``Connection: close``); then break
whatever is left, wake the threads and join them.
"""

from __future__ import annotations

import collections
import contextlib
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.edge.proxies import TrustedPeers
from kakehashi.server.edge.tls import make_context
from kakehashi.server.net.bind import bind_sockets, bound_addresses
from kakehashi.server.observe.logfile import dropped_lines
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.logguard import restore_logs
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.observe.metrics_http import server_metrics
from kakehashi.server.threads.channel import HTTPChannel
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.environ import ProxiedEnvironBuilder
from kakehashi.server.threads.epoll_poller import EpollPoller
from kakehashi.server.threads.epoll_poller import available as epoll_available
from kakehashi.server.threads.poller import ChannelFactory, Poller
from kakehashi.server.threads.portable_poller import PortablePoller
from kakehashi.server.threads.tls_channel import TLSEnvironBuilder, tls_channels
from kakehashi.server.threads.tracker import RequestTracker
from kakehashi.wsgi import WSGIApp, base_environ

__all__ = ["Server", "make_poller", "managed_server", "serve"]

_WINDOWS_SIGNAL_CHECK = 0.25  # seconds between chances for Ctrl-C's handler on Windows
# Bytes a wake-up takes in the wake socket: any number of them means "look again".
_WAKE_BYTES = 4096


def make_poller(
    ctx: ServerContext, sockets: list[socket.socket], open_channel: ChannelFactory = HTTPChannel
) -> Poller:
    """The poller ``--poller`` asks for: epoll where it exists unless told otherwise."""
    if ctx.config.poller == "epoll" or (ctx.config.poller == "auto" and epoll_available()):
        return EpollPoller(ctx, sockets, open_channel)
    return PortablePoller(ctx, sockets, open_channel=open_channel)


class Server:
    """A WSGI server.

    Args:
        app: the WSGI application.
        config: settings; the defaults listen on 127.0.0.1:8000.
        sockets: listening sockets to use instead of binding ``config.bind`` (pre-fork
            workers share their parent's).
        metrics: a pre-fork worker's metrics recorder (its parent serves /metrics).

    Raises:
        ConfigError: from the constructor, when an address cannot be bound.
    """

    # A request here leaves no garbage and few young objects (tests/integration/
    # test_garbage.py): the collector hardly runs, and a frozen heap measured 1-2% slower at
    # keep-alive 10 (paired slices), for nothing.  --gc-freeze is the asyncio engine's.
    freezes_heap = False

    def __init__(
        self,
        app: WSGIApp,
        config: ServerConfig | None = None,
        *,
        sockets: list[socket.socket] | None = None,
        shared_listeners: bool = False,
        metrics: Recorder | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        recorder, self._metrics_http = server_metrics(self.config, metrics)
        # Listening sockets shared with other processes (pre-fork workers) stay open in them:
        # on shutdown this one must not refuse new handshakes for all (handshakes.py).
        self.shared_listeners = shared_listeners
        try:
            tls_context = make_context(self.config) if self.config.tls else None
            self.sockets = (
                sockets
                if sockets is not None
                else bind_sockets(
                    self.config.addresses, self.config.backlog, self.config.reuse_port
                )
            )
        except ConfigError:
            if self._metrics_http is not None:
                self._metrics_http.release()
            raise
        first = self.sockets[0].getsockname()
        name, port = (first[0], first[1]) if isinstance(first, tuple) else ("localhost", 0)
        scheme = "https" if tls_context is not None else self.config.url_scheme
        environ = (ProxiedEnvironBuilder if tls_context is None else TLSEnvironBuilder)(
            base_environ(name, port, scheme, self.config.workers > 1),
            TrustedPeers(self.config.forwarded_allow_ips),
            self.config.root_path,
        )
        self.ctx = ServerContext(app, self.config, environ)
        restore_logs()  # the application, imported by now, may have configured logging
        self.ctx.metrics = recorder
        if recorder is not None:
            recorder.log_dropped = dropped_lines  # the access log counts its own drops
        # Every connection is a TLSChannel with --certfile: decided here, once.
        factory = HTTPChannel if tls_context is None else tls_channels(tls_context)
        self._poller = make_poller(self.ctx, self.sockets, factory)
        if recorder is not None:
            recorder.in_flight = self._poller.in_flight
        self._workers: list[threading.Thread] = []
        self._sweeper: threading.Thread | None = None
        # serve_forever's thread sleeps on the wake socket, not on a lock: a signal handler
        # runs on that thread, between two of its bytecodes, so anything it did that takes a
        # lock (Event.set, logging, starting a thread) could wait forever for a lock that
        # same thread held when the signal came (a worker hung this way on SIGTERM).
        # Handlers only set a flag or queue a call, and write a byte (call_soon).  The
        # socket pair exists while serve_forever runs.
        self._stop_asked = False
        self._soon: collections.deque[Callable[[], object]] = collections.deque()
        self._wake_w: socket.socket | None = None
        self._sweeper_stop = threading.Event()
        self._stopped = threading.Event()

    @property
    def addresses(self) -> list[str]:
        """The bound addresses, ports resolved: ``127.0.0.1:54321``, ``unix:/path``."""
        return bound_addresses(self.sockets)

    def start(self, on_ready: Callable[[], object] | None = None) -> None:
        """Start the threads and return; the server is accepting when this returns.
        ``on_ready``: called before the first thread starts (engine/contract.py)."""
        if on_ready is not None:
            on_ready()
        self.ctx.access.start()
        self._poller.start()
        for number in range(self.config.threads):
            self._workers.append(self._start_worker(number))
        config = self.config
        tick = max(0.05, min(0.5, config.header_timeout / 4, config.keep_alive / 4))
        if config.request_timeout:
            tick = max(0.05, min(tick, config.request_timeout / 4))
        self._sweeper = threading.Thread(
            target=self._poller.sweep,
            args=(self._sweeper_stop, tick, self._supervise),
            name="kakehashi-sweeper",
            daemon=True,
        )
        self._sweeper.start()
        if self._metrics_http is not None:
            self._metrics_http.start()

    @property
    def _threads(self) -> list[threading.Thread]:
        sweeper = [self._sweeper] if self._sweeper else []
        return [*self._poller.threads, *self._workers, *sweeper]

    def _start_worker(self, number: int) -> threading.Thread:
        thread = threading.Thread(
            target=self._poller.work, name=f"kakehashi-worker-{number}", daemon=True
        )
        thread.start()
        return thread

    def _supervise(self) -> None:
        """Each sweeper tick: replace a worker thread that died, report stuck requests, and
        undo what the application's logging setup did to kakehashi's logs (logguard.py)."""
        restore_logs()  # loggers switched off (only under ``kakehashi serve``)
        # A handler closed by the app's dictConfig starts its flusher again when written to,
        # but the access log's batches are handed over by that flusher: start it here.
        self.ctx.access.start()
        if self.ctx.metrics is not None:  # a pre-fork worker's figures reach its parent
            self.ctx.metrics.publish()
        if self.ctx.stopping:
            return
        for number, thread in enumerate(self._workers):
            if not thread.is_alive():
                error_logger.error("worker thread %s died; starting another", thread.name)
                self._workers[number] = self._start_worker(number)
        timeout = self.config.request_timeout
        if timeout and self.ctx.watch is not None:
            for ident, entry, stack in self.ctx.watch.overdue(timeout):
                error_logger.warning(
                    "request %s from %s still running after %.1fs (thread %d):\n%s",
                    entry.line,
                    entry.peer[0] or "-",
                    time.monotonic() - entry.started,
                    ident,
                    stack.rstrip(),
                )

    def serve_forever(self) -> None:
        """Serve until :meth:`request_shutdown` (or :meth:`shutdown`), then shut down.  Runs
        what :meth:`call_soon` queued, on this thread, meanwhile."""
        if not self._threads:
            self.start()
        wake_r, self._wake_w = socket.socketpair()
        wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # A wait is not interrupted by Ctrl-C on Windows: wake to let its handler run.
        timeout = _WINDOWS_SIGNAL_CHECK if sys.platform == "win32" else None
        # A process-wide signal may be delivered to any thread that does not block it: to a
        # worker thread, the main thread's select is not interrupted, and Python runs the
        # handler only once the main thread runs again.  Seen: a pre-fork worker that got
        # SIGTERM as it started its threads served on for the whole graceful timeout.  The
        # wake socket is made the signal wake-up fd, so any thread's signal wakes the select.
        old_wakeup = self._signal_wakeup(self._wake_w.fileno())
        try:
            while True:
                self._run_soon()
                if self._stop_asked:
                    break
                select.select([wake_r], [], [], timeout)
                with contextlib.suppress(OSError):  # BlockingIOError: a timeout, nothing came
                    wake_r.recv(_WAKE_BYTES)
            self._shutdown(self.config.graceful_timeout)
        finally:
            if old_wakeup is not None:
                self._signal_wakeup(old_wakeup)
            wake_w, self._wake_w = self._wake_w, None
            if wake_w is not None:
                wake_w.close()
            wake_r.close()

    @staticmethod
    def _signal_wakeup(fd: int) -> int | None:
        """``signal.set_wakeup_fd(fd)``; the fd it replaces, or None where it cannot be set
        (serve_forever on another thread than the main one, as in tests)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            return None

    def call_soon(self, work: Callable[[], object]) -> None:
        """Have serve_forever's thread run ``work`` soon; what is queued while the server
        drains runs just before its last log flush.  Takes no lock: this is what a signal
        handler may do."""
        self._soon.append(work)
        self._wake()

    def request_shutdown(self, restart: bool = False) -> None:
        """Ask a running :meth:`serve_forever` to shut down.  Takes no lock, so a signal
        handler may call it.  ``restart`` (a replacement takes over) changes nothing here:
        it picks the WebSockets' close code, and this engine serves none."""
        self._stop_asked = True
        self._wake()

    # What the process manager reads (engine/contract.py).  The app is a RequestTracker
    # when the server was made by managed_server(); a plain app has nothing to report.
    def say_goodbye(self) -> None:
        if isinstance(self.ctx.app, RequestTracker):
            self.ctx.app.closing = True

    def requests_started(self) -> int:
        app = self.ctx.app
        return app.started if isinstance(app, RequestTracker) else 0

    def stuck(self, timeout: float) -> str:
        app = self.ctx.app
        running = app.stuck(self.config.threads, timeout) if isinstance(app, RequestTracker) else []
        return f"every thread is stuck: {', '.join(running)}" if running else ""

    def _wake(self) -> None:
        # Full: a wake-up is pending already.  None or closed: serve_forever is not
        # waiting (it looks at the flag and the queue before it does).
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(OSError):
                wake_w.send(b"\0")

    def _run_soon(self) -> None:
        while self._soon:
            work = self._soon.popleft()
            try:
                work()
            except Exception:  # a handler's work failed: say so, keep serving
                error_logger.exception("deferred signal work failed")

    def shutdown(self, timeout: float | None = None) -> None:
        """Shut down now, from any thread other than a worker; returns when all is closed."""
        if timeout is None:
            timeout = self.config.graceful_timeout
        self.request_shutdown()
        self._shutdown(timeout)

    def _shutdown(self, timeout: float) -> None:
        """Serve what was accepted, then stop (docs/design.md, "Shutdown order")."""
        if self._stopped.is_set() or self.ctx.stopping:
            self._stopped.wait()
            return
        deadline = time.monotonic() + timeout
        self.ctx.linger_until = min(time.monotonic() + self.config.shutdown_linger, deadline)
        self.ctx.stopping = True
        poller = self._poller
        poller.stop_accepting(refuse_new=not self.shared_listeners, until=self.ctx.linger_until)
        poller.linger_idle(self.ctx.linger_until)
        join_for = 2.0  # idle threads leave at once when woken
        if not poller.drained.wait(max(0.0, deadline - time.monotonic())):
            error_logger.warning(
                "%d requests still running after %gs; closing them", len(poller.channels), timeout
            )
            poller.close_parked()
            poller.abort_all()
            poller.drained.wait(0.2)
            # Threads still inside the application cannot be stopped; they are daemons, so
            # the process exits without them, within graceful-timeout + 0.5 s in all.
            join_for = 0.25
        self._sweeper_stop.set()
        poller.wake_all()
        join_until = time.monotonic() + join_for
        for thread in self._threads:
            thread.join(timeout=max(0.0, join_until - time.monotonic()))
        poller.close()
        if self.ctx.metrics is not None:
            self.ctx.metrics.publish()
        if self._metrics_http is not None:
            self._metrics_http.close()
        self._run_soon()  # a log reopen asked while draining: before the last flush
        self.ctx.access.flush()  # buffered access lines are written before shutdown returns
        self._stopped.set()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(timeout=2.0)


def managed_server(
    app: WSGIApp,
    config: ServerConfig,
    *,
    sockets: list[socket.socket] | None = None,
    shared_listeners: bool = False,
    metrics: Recorder | None = None,
) -> Server:
    """The thread engine's factory (engine/contract.py): a Server whose application is
    tracked, so that it can say how many requests it started and which are stuck."""
    return Server(
        RequestTracker(app),
        config,
        sockets=sockets,
        shared_listeners=shared_listeners,
        metrics=metrics,
    )


def serve(app: WSGIApp, **settings: Any) -> None:
    """Serve ``app`` until interrupted: ``serve(app, bind=("127.0.0.1:8080",), threads=8)``.

    Settings are the fields of :class:`ServerConfig`.  Ctrl-C stops it gracefully.

    Raises:
        ConfigError: a setting is invalid or an address cannot be bound.
    """
    if isinstance(settings.get("bind"), str):
        settings["bind"] = (settings["bind"],)
    server = Server(app, ServerConfig(**settings))
    for address in server.addresses:
        error_logger.info("kakehashi listening on %s", address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()
