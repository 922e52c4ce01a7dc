"""Which engine serves the application, and running the ASGI one.

``kakehashi serve module:app`` imports the application and tells an ASGI one (it, or its
``__call__``, is a coroutine function) from a WSGI one (kakehashi.asgi.detect), says which
at start, and hands it to the asyncio engine (server/aio) or the thread engine.
``--interface`` decides where guessing would be wrong.  A setting that means nothing to the
engine chosen is named in one line at start, never silently ignored.

Under the process manager (``--workers``, ``--max-requests``, ``--reload``) the parent does
not import the application unless ``--preload``: each worker does, and :func:`any_engine`,
the factory the workers are given, tells there which engine serves it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from typing import Any

from kakehashi import __version__
from kakehashi.asgi import Interface, as_asgi3, detect
from kakehashi.cli.lifecycle import PidFile, needs_manager, serve_in_process
from kakehashi.server import ServerConfig
from kakehashi.server.aio import AsyncServer, LifespanFailed
from kakehashi.server.engine.contract import Engine
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.threads.server import managed_server

__all__ = ["any_engine", "pick_interface", "serve_asgi"]

log = logging.getLogger("kakehashi.error")

_NAMES = {
    Interface.WSGI: "a WSGI application",
    Interface.ASGI3: "an ASGI 3 application",
    Interface.ASGI2: "an ASGI 2 application",
}
# Settings of the thread engine that mean nothing to one event loop: its threads, its
# poller, its buffers, and --request-timeout (a request holding a thread; on the asyncio
# engine a stuck loop is what --loop-watchdog and --timeout see).
_THREADS_ONLY = ("threads", "poller", "buffer_body_size", "parked_body_budget",
                 "output_buffer_memory", "output_buffer_limit", "request_timeout")  # fmt: skip
_ASGI_ONLY: tuple[str, ...] = ("loop", "loop_watchdog", "limit_concurrency", "gc_freeze")
# WebSockets are served to ASGI applications only (server/aio/websocket.py).
_ASGI_ONLY += ("ws_max_size", "ws_max_queue", "ws_ping_interval", "ws_ping_timeout",
               "ws_close_timeout", "ws_per_message_deflate", "ws_deflate_budget")  # fmt: skip


def _changed(config: ServerConfig, names: tuple[str, ...]) -> list[str]:
    """The flags among ``names`` set to something other than their default."""
    out = []
    for f in dataclasses.fields(config):
        if f.name not in names:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = getattr(config, f.name)
        if value != default:
            out.append(f"{f.metadata['flag']} {value}")
    return out


def pick_interface(reference: str, config: ServerConfig, load: Any) -> tuple[Any, Interface]:
    """The application (None when pre-fork workers import it themselves) and its interface;
    logs which it is, and the settings that mean nothing to its engine.

    Args:
        load: imports ``reference`` (cli/serve.py's load_app).

    Raises:
        ConfigError: the application cannot be imported or is neither kind.
    """
    declared = Interface.named(config.interface)
    if needs_manager(config) and not config.preload:
        if declared is not Interface.AUTO:  # known without importing it: said once, here
            log.info("%s is %s (--interface)", reference, _NAMES[declared])
            _warn_unused(config, declared)
        return None, declared  # each worker imports it (any_engine)
    app = load(reference)
    interface = detect(app, declared)
    log.info("%s is %s", reference, _NAMES[interface])
    _warn_unused(config, interface)
    return app, interface


def _warn_unused(config: ServerConfig, interface: Interface) -> None:
    """One line naming the settings given that mean nothing to ``interface``'s engine."""
    if interface.is_asgi:
        if unused := _changed(config, _THREADS_ONLY):
            log.warning("%s: mean(s) nothing to an ASGI application (one event loop serves "
                        "it); ignored", ", ".join(unused))  # fmt: skip
    elif unused := _changed(config, _ASGI_ONLY):
        log.warning("%s: mean(s) nothing to a WSGI application; ignored", ", ".join(unused))


def any_engine(
    app: Any,
    config: ServerConfig,
    *,
    sockets: list[socket.socket] | None = None,
    shared_listeners: bool = False,
    metrics: Recorder | None = None,
) -> Engine:
    """The process manager's engine factory (engine/contract.py's EngineFactory): the
    asyncio engine for an ASGI application, the thread engine for a WSGI one, told in the
    worker once it imported the application.

    Raises:
        ConfigError: the application is neither kind, or the loop asked for is missing.
    """
    declared = Interface.named(config.interface)
    interface = detect(app, declared)
    if declared is Interface.AUTO and not config.preload:  # the parent could not say it
        log.info("worker %d: %s", os.getpid(), _NAMES[interface])
        _warn_unused(config, interface)
    if not interface.is_asgi:
        return managed_server(
            app, config, sockets=sockets, shared_listeners=shared_listeners, metrics=metrics
        )
    return AsyncServer(
        as_asgi3(app, interface),
        config,
        sockets=sockets,
        shared_listeners=shared_listeners,
        metrics=metrics,
    )


def serve_asgi(reference: str, config: ServerConfig, app: Any, interface: Interface) -> int:
    """Serve an ASGI application in this process until a signal stops it.

    Returns the exit code: 0, or 1 when the application refused to start (its message is
    logged) or the exit was forced.

    Raises:
        ConfigError: an address cannot be bound, the loop is not installed, the TLS files
            cannot be loaded, or the pid file cannot be written.
    """
    server = AsyncServer(as_asgi3(app, interface), config)
    pid_file = PidFile(config.pid)
    pid_file.write()
    try:
        scheme = "https" if config.tls else "http"
        for address in server.addresses:
            where = address if address.startswith("unix:") else f"{scheme}://{address}/"
            log.info("kakehashi %s serving %s on %s", __version__, reference, where)
        log.info("pid %d, one %s event loop", os.getpid(), server.loop_name)
        # serve_in_process installs the signal handlers before the startup: the address
        # is printed above, and a connection made at once is served during the startup's
        # last loop turns, so a SIGTERM right after its answer must find them in place.
        try:
            return serve_in_process(server)
        except LifespanFailed as exc:
            log.error("the application failed to start (lifespan): %s", exc)
            return 1
    finally:
        pid_file.remove()
