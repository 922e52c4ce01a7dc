"""What an engine is, to the process manager and the command line.

An engine serves one application on listening sockets it is handed: the thread engine
(``server/threads``) serves WSGI apps, the asyncio engine (``server/aio``) ASGI apps.  The
process manager (``server/process``) and the CLI drive either through this protocol and the
factory below, so neither imports an engine: the CLI picks the factory and hands it over.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any, Protocol

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.metrics import Recorder

__all__ = ["Engine", "EngineFactory", "shutdown_after_delay"]


class Engine(Protocol):
    """A server of one engine, as the process manager and the CLI see it."""

    # Whether a process of its own freezes its heap once ready (--gc-freeze, engine/heap.py):
    # worth it where requests in flight keep the collector busy.
    freezes_heap: bool

    @property
    def config(self) -> ServerConfig: ...

    def start(self, on_ready: Callable[[], object] | None = None) -> None:
        """Start serving (accepting on return); RuntimeError if no thread can start.

        ``on_ready`` is called once the engine is ready for requests and before any can be
        served (the process manager's "ready": a worker that served a request was ready)."""

    def serve_forever(self) -> None:
        """Run queued calls until shut down (the main thread sleeps here)."""

    def call_soon(self, work: Callable[[], object]) -> None:
        """Run ``work`` on the thread in :meth:`serve_forever` (safe from a signal handler)."""

    def request_shutdown(self, restart: bool = False) -> None:
        """Begin the graceful shutdown (from any thread).  ``restart``: another process
        takes over (the process manager's rolling replacement), so the asyncio engine closes
        open WebSockets with 1012 (service restart) instead of 1001 (going away)."""

    def say_goodbye(self) -> None:
        """From now on, responses ask the client to reconnect elsewhere (``--shutdown-delay``)."""

    def requests_started(self) -> int:
        """How many requests the app was handed (``--max-requests``)."""

    def stuck(self, timeout: float) -> str:
        """What is stuck, in the engine's own words, when no request it can run made
        progress for ``timeout`` seconds (``--timeout``): every thread held by a request
        (the thread engine), or the event loop blocked (the asyncio engine); else ``""``.
        The process manager logs it as it is."""


class EngineFactory(Protocol):
    def __call__(
        self,
        app: Any,
        config: ServerConfig,
        *,
        sockets: list[socket.socket] | None = None,
        shared_listeners: bool = False,
        metrics: Recorder | None = None,
    ) -> Engine: ...


def shutdown_after_delay(server: Engine, asked_before: bool, restart: bool = False) -> None:
    """SIGTERM: drain now, or after ``--shutdown-delay`` seconds of serving with
    ``Connection: close`` (for load balancers that stop sending traffic late).  A second
    SIGTERM drains at once.  ``restart``: a replacement takes over (a worker's SIGUSR2,
    server/process/worker.py), handed on to :meth:`Engine.request_shutdown`."""
    delay = server.config.shutdown_delay
    if not delay or asked_before:
        server.request_shutdown(restart)
        return
    server.say_goodbye()  # kept-alive clients go elsewhere
    error_logger.info("serving %gs more before draining (--shutdown-delay)", delay)
    timer = threading.Timer(delay, server.request_shutdown, args=(restart,))
    timer.name = "kakehashi-shutdown-delay"
    timer.daemon = True
    timer.start()
