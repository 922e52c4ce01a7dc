"""What the asyncio engine takes from the shared rooms of ``kakehashi.server``, in one place.

Nothing of the thread engine (``threads/``) or the process manager is imported.
"""

from __future__ import annotations

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.edge.tls import make_context
from kakehashi.server.engine.pace import SendPace
from kakehashi.server.net.bind import bind_sockets
from kakehashi.server.net.handshakes import handshakes_pending, refuse_new_handshakes
from kakehashi.server.observe.loggers import error_logger

__all__ = [
    "SendPace",
    "ServerConfig",
    "bind_sockets",
    "error_logger",
    "handshakes_pending",
    "make_context",
    "refuse_new_handshakes",
]
