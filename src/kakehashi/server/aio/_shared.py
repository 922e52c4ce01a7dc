"""What the asyncio engine takes from the shared rooms of ``kakehashi.server``, in one place.

Nothing of the thread engine (``threads/``) or the process manager is imported.
"""

from __future__ import annotations

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.edge.proxies import (
    PROXY_FIELDS,
    ClientView,
    TrustedPeers,
    see_client,
)
from kakehashi.server.edge.proxy_protocol import expect_proxy_header
from kakehashi.server.edge.tls import make_context
from kakehashi.server.engine.pace import SendPace
from kakehashi.server.net.bind import accept_at_handshake, bind_sockets, bound_addresses
from kakehashi.server.net.handshakes import handshakes_pending, refuse_new_handshakes
from kakehashi.server.observe.accesslog import (
    AccessLog,
    RequestReader,
    body_length,
    first_line,
    request_line,
)
from kakehashi.server.observe.logfile import dropped_lines
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.logguard import restore_logs
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.observe.metrics_http import server_metrics

__all__ = [
    "PROXY_FIELDS",
    "AccessLog",
    "ClientView",
    "Recorder",
    "RequestReader",
    "SendPace",
    "ServerConfig",
    "TrustedPeers",
    "accept_at_handshake",
    "bind_sockets",
    "body_length",
    "bound_addresses",
    "dropped_lines",
    "error_logger",
    "expect_proxy_header",
    "first_line",
    "handshakes_pending",
    "make_context",
    "refuse_new_handshakes",
    "request_line",
    "restore_logs",
    "see_client",
    "server_metrics",
]
