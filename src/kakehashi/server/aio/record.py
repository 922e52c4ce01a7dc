"""The access log and the metrics of the asyncio engine: what a finished request tells them.

The lines and the figures are the thread engine's (observe/accesslog.py, observe/metrics.py):
the same formats, atoms and metric names.  On a request's path this costs two appends (the
access log's and the metrics' pending deques, each made up in batches later) and one clock
read; the line is made from the :class:`~kakehashi.server.aio.exchange.Exchange` itself,
read through :class:`ExchangeReader` when its batch is drained.

What a line says, as on the thread engine:

- the status that went out: the application's once its head was sent, the error page's
  (500, or the 408/413... the connection answered while the application ran), else nginx's
  499 (the client left before any head);
- the body bytes that went out: what the application gave, less what was still queued when
  the connection was cut (a slow reader dropped);
- the duration: from the head's arrival to the application's return.

Owned by the event loop's thread, like the exchanges it reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kakehashi.asgi import Phase
from kakehashi.server.aio._shared import AccessLog, RequestReader

if TYPE_CHECKING:
    from kakehashi.server.aio.exchange import Exchange
    from kakehashi.server.aio.wsshared import WebSocketFacts

__all__ = ["EXCHANGE_READER", "ExchangeReader", "access_log", "record", "websocket_reporter"]

_STATUS_GONE = 499  # nginx's: the client closed before a response head went out
# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_DONE = Phase.DONE


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    """A request header of the scope (repeats joined as RFC 9110 §5.3 says), or None."""
    values = [value for key, value in scope["headers"] if key == name]
    if not values:
        return None
    return b", ".join(values).decode("latin-1")


def _shown(value: Any) -> Any:
    """A scope value as an access line shows it: ``host:port`` for an address."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, tuple | list) and len(value) == 2:
        host, port = value
        return host if port is None else f"{host}:{port}"
    return value


class ExchangeReader:
    """How the access log reads a request of the asyncio engine (observe/accesslog.py's
    RequestReader): its scope as the application left it (so a middleware's client address
    or method shows, as with WSGI), the request line as received."""

    __slots__ = ()

    @staticmethod
    def summary(exch: Exchange) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
        scope = exch.scope
        referer = agent = auth = None
        for name, value in scope["headers"]:  # one pass for the three the default line uses
            if name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"user-agent":
                agent = value.decode("latin-1")
            elif name == b"authorization":
                auth = value.decode("latin-1")
        client = scope["client"]
        return (
            client[0] if client else "",
            scope["method"],
            exch.request.target.decode("latin-1"),
            f"HTTP/{scope['http_version']}",
            referer,
            agent,
            auth,
        )

    @staticmethod
    def header(exch: Exchange, name: str) -> Any:
        return _header(exch.scope, name.encode("latin-1"))

    @staticmethod
    def path(exch: Exchange) -> Any:
        return exch.scope["path"]

    @staticmethod
    def query(exch: Exchange) -> Any:
        return exch.scope["query_string"].decode("latin-1")

    @staticmethod
    def variable(exch: Exchange, key: str) -> Any:
        """``%({key}e)s``: the scope's ``key`` (an address as ``host:port``)."""
        return _shown(exch.scope.get(key))


EXCHANGE_READER: RequestReader = ExchangeReader()


class _Ended:
    """A WebSocket that ended, shaped as the reader reads an Exchange: ``scope`` (the keys
    the reader asks for) and ``request`` (the line as received)."""

    __slots__ = ("request", "scope")

    def __init__(self, facts: WebSocketFacts) -> None:
        request = facts.request
        target = request.target
        path, _, query = target.partition(b"?")
        self.request = request
        self.scope = {
            "headers": [(name.lower(), value) for name, value in request.headers],
            "client": facts.peer,
            "method": request.method.decode("latin-1"),
            "http_version": request.http_version.decode("latin-1"),
            "path": path.decode("latin-1"),
            "query_string": query,
        }


def websocket_reporter(access: AccessLog) -> Callable[[WebSocketFacts], None]:
    """What a WebSocket's end tells the access log (wsshared.py's ``report``): one line for
    the whole connection, read through the same reader as an HTTP request's."""

    def report(facts: WebSocketFacts) -> None:
        access.websocket(_Ended(facts), facts.duration, facts.counts(), facts.status)

    return report


def access_log(fmt: str, enabled: bool) -> AccessLog:
    return AccessLog(EXCHANGE_READER, fmt, enabled)


def record(exch: Exchange, failed: bool) -> None:
    """The application's call for ``exch`` ended (``failed``: it raised): its access line and
    its figures.  Called only when one of them is on."""
    conn = exch.conn
    ctx = conn.ctx
    cycle = exch.cycle
    seconds = time.monotonic() - exch.started  # the clock of Exchange.started
    if cycle.head_sent:
        status = cycle.status
        sent = max(0, cycle.body_bytes - conn.unsent)
    elif exch.page_status:
        status, sent = exch.page_status, exch.page_bytes
    else:
        status, sent = _STATUS_GONE, 0
    metrics = ctx.metrics
    if metrics is not None:  # as on the thread engine: a response cut short is not counted
        if failed:  # a 500, or the status of a response cut short
            metrics.app_error(exch.request.method, status, cycle.head_sent, seconds)
        elif (cycle.head_sent and cycle.phase is _DONE) or exch.page_status == 500:
            metrics.response(exch.request.method, status, sent, seconds)
    access = ctx.access
    if access.enabled:
        access.response(exch, status, sent, seconds, cycle.headers)
