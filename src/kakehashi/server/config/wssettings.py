"""The WebSocket settings of ServerConfig (docs/websocket.md, "Settings and limits").

No I/O here.  Their fields (default, flag, help, bounds) are made here and declared in
:class:`~kakehashi.server.config.settings.ServerConfig`'s body, last, so they are its fields
like any other (flags, TOML, environment, docs/settings.md) and checked by its
``__post_init__``, while settings.py stays short.  The names are uvicorn's where it has the
setting.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from kakehashi.server.config.fields import opt

__all__ = ["WS_FIELDS"]

# name: the field, in the order of --help and docs/settings.md.
# fmt: off
WS_FIELDS: dict[str, Any] = dict(
    ws_max_size=field(
        # uvicorn's 16 MiB: one message, after reassembly and decompression (close 1009).
        default=16 << 20,
        metadata=opt(
            "--ws-max-size",
            "largest WebSocket message in bytes, after decompression (closed with 1009 beyond)",
            "websocket",
            most=1 << 30,
        ),
    ),
    ws_max_queue=field(
        # uvicorn's 32: messages waiting for the application; above, reading pauses and
        # TCP pushes back on the sender alone.
        default=32,
        metadata=opt(
            "--ws-max-queue",
            "WebSocket messages waiting for the application; above it the connection is not read",
            "websocket",
            most=100_000,
        ),
    ),
    ws_ping_interval=field(
        # uvicorn's 20 s: below the idle timeouts of common proxies (60 s).
        default=20.0,
        metadata=opt(
            "--ws-ping-interval",
            "seconds between the server's pings on an open WebSocket (0 = none)",
            "websocket",
            off=True,
            most=86400,
        ),
    ),
    ws_ping_timeout=field(
        default=20.0,
        metadata=opt(
            "--ws-ping-timeout",
            "seconds a ping's pong may take; past it the peer "
            "is gone and the connection is freed (0 = wait forever)",
            "websocket",
            off=True,
            most=86400,
        ),
    ),
    ws_close_timeout=field(
        # The close handshake's deadline: a peer that never answers our Close frame.
        default=5.0,
        metadata=opt(
            "--ws-close-timeout",
            "seconds the peer has to answer our Close frame before the connection is cut",
            "websocket",
            most=3600,
        ),
    ),
    ws_per_message_deflate=field(
        default=True,
        metadata=opt(
            "--ws-per-message-deflate",
            "accept permessage-deflate compression (RFC 7692) when a client offers it",
            "websocket",
        ),
    ),
    ws_deflate_budget=field(
        # A compressing connection holds zlib state (~40 KiB with the core's defaults);
        # uvicorn#1862 saw 4 GB for 5-8k connections.  1000 of them: about 40 MiB.
        default=1000,
        metadata=opt(
            "--ws-deflate-budget",
            "WebSockets per process that may use "
            "compression at once; past it new ones are accepted uncompressed "
            "(0 = never compress)",
            "websocket",
            off=True,
            most=1_000_000,
        ),
    ),
)
# fmt: on
