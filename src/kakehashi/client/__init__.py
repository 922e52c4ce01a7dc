"""kakehashi.client: a small, strict HTTP/1.1 client on top of ``kakehashi.http1``.

    >>> from kakehashi import client
    >>> r = client.get("http://127.0.0.1:8000/")           # doctest: +SKIP
    >>> r.status, r.headers["content-type"], r.body        # doctest: +SKIP

:class:`Client` keeps connections alive per origin; ``request()``, ``get()``... are one-shot.
Every wait has a finite timeout.  Errors come from :mod:`kakehashi.errors`: ConnectError,
ReadError and WriteError (also ``ConnectionError``), ConnectTimeout, ReadTimeout,
WriteTimeout and PoolTimeout (also ``TimeoutError``), TooManyRedirects, and
RemoteProtocolError for a malformed response.

WebSockets: ``kakehashi.client.websocket.connect(url)`` opens one on the same connections, TLS
and proxy rules (docs/websocket.md, "The client").

This package imports only the standard library, ``kakehashi.errors``, ``kakehashi.http1`` and
``kakehashi.websocket``.
"""

from kakehashi.client.api import (
    Client,
    delete,
    get,
    head,
    options,
    patch,
    post,
    put,
    request,
)
from kakehashi.client.auth import BasicAuth, BearerAuth, bearer
from kakehashi.client.exchange import Transport
from kakehashi.client.models import DEFAULT_TIMEOUT, URL, Headers, Response, Timeout
from kakehashi.client.pool import Pool
from kakehashi.client.proxy import Proxies, Proxy
from kakehashi.client.transport import SocketStream, Stream, connect

__all__ = [
    "DEFAULT_TIMEOUT",
    "URL",
    "BasicAuth",
    "BearerAuth",
    "Client",
    "Headers",
    "Pool",
    "Proxies",
    "Proxy",
    "Response",
    "SocketStream",
    "Stream",
    "Timeout",
    "Transport",
    "bearer",
    "connect",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]
