"""The PROXY protocol on the asyncio engine (``--proxy-protocol``): a connection that reads
the proxy's header (edge/proxy_protocol.py) before any HTTP.

The header's source address becomes the connection's client (the scope's ``client``, what
``--forwarded-allow-ips`` is judged against, the access log's address).  A missing,
malformed or unexpected header closes the connection without a response, as on the thread
engine: a peer that gets this wrong is not speaking HTTP to us.  A header that never
completes is closed by the header timeout, as a silent connection is.

Only servers with ``--proxy-protocol`` use this class, so the others pay nothing for it.
"""

from __future__ import annotations

import asyncio

from kakehashi.errors import RemoteProtocolError
from kakehashi.server.aio._shared import expect_proxy_header
from kakehashi.server.aio.connection import HTTPConnection
from kakehashi.server.aio.context import AioContext, error_logger

__all__ = ["BufferedProxiedConnection", "ProxiedConnection"]


class ProxiedConnection(HTTPConnection):
    """An HTTPConnection whose first bytes are a PROXY protocol header.

    ``head``: what arrived of the header so far; None once it was read."""

    __slots__ = ("head",)

    def __init__(self, ctx: AioContext) -> None:
        super().__init__(ctx)
        self.head: bytes | None = b""

    def data_received(self, data: bytes) -> None:
        head = self.head
        if head is None:
            super().data_received(data)
            return
        if self.closing:
            return
        head += data
        config = self.ctx.config
        peer = self.client or ("", 0)  # a Unix socket's peer has no address
        try:
            found = expect_proxy_header(head, peer, config.proxy_protocol, config.proxy_allow_from)
        except RemoteProtocolError as exc:
            error_logger.info("connection from %s closed: %s", peer[0] or "unix", exc)
            self.close()
            return
        if found is None:
            self.head = head  # more to come, within the header timeout
            return
        source, end = found
        self.head = None
        if source != peer:
            self.client = (source[0], source[1])
        if len(head) > end:
            super().data_received(head[end:])


class BufferedProxiedConnection(ProxiedConnection, asyncio.BufferedProtocol):
    """A ProxiedConnection read as BufferedHTTPConnection is, on asyncio's own loop."""

    __slots__ = ()
