"""``kakehashi.server.serve(app)``: one call for both kinds of application.

A WSGI application goes to the thread engine (``threads/``), an ASGI one to the asyncio
engine (``aio/``); which it is, kakehashi.asgi.detect tells (``interface=`` decides where the
guess would be wrong).  Installs no signal handler: Ctrl-C reaches the calling thread as
KeyboardInterrupt and starts the graceful shutdown.
"""

from __future__ import annotations

from typing import Any

from kakehashi.asgi import Interface, as_asgi3, detect
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.server import serve as serve_wsgi

__all__ = ["serve"]


def serve(app: Any, **settings: Any) -> None:
    """Serve ``app`` until interrupted: ``serve(app, bind=("127.0.0.1:8080",))``.

    Settings are the fields of :class:`ServerConfig`.  Ctrl-C stops it gracefully.

    Raises:
        ConfigError: a setting is invalid, an address cannot be bound, or ``app`` is
            neither a WSGI nor an ASGI application.
        LifespanFailed: an ASGI application refused to start.
    """
    if isinstance(settings.get("bind"), str):
        settings["bind"] = (settings["bind"],)
    config = ServerConfig(**settings)
    interface = detect(app, Interface.named(config.interface))
    if not interface.is_asgi:
        serve_wsgi(app, **settings)
        return
    # Imported here: a WSGI program need not load asyncio.
    from kakehashi.server.aio import AsyncServer

    server = AsyncServer(as_asgi3(app, interface), config)
    error_logger.info("an ASGI application, on the %s event loop", server.loop_name)
    for address in server.addresses:
        error_logger.info("kakehashi listening on %s", address)
    try:
        server.run_in_thread()
        server.stopped.wait()
    except KeyboardInterrupt:
        server.shutdown()
