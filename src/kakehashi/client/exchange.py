"""The Transport: one request and its response over a pooled connection.

What it does: takes one request (method, URL, encoded fields, body, timeouts), gets a
connection from the pool or opens one, writes the request through ``http1.Connection``,
reads the response head, and hands back a :class:`Response` whose body is read on demand;
the connection goes back to the pool when the body has been read to its end.

What it must not do: decide policy (default fields, redirects, which timeout: the Client in
``api.py`` does), parse or frame HTTP itself (``kakehashi.http1`` does all of it), touch
sockets directly (``transport.py`` does, and maps their errors), or return a body it did not
receive whole.

Invariants:
    * Every wait is bounded: connect, read, write and pool timeouts are always finite.
    * A connection goes back to the pool only after its response was read to the end and
      ``http1`` says it is reusable; any error or an abandoned body closes it.
    * The server closing the connection before the response is complete raises ReadError
      (chained from http1's RemoteProtocolError); it is never a short body.
    * A request is retried once, on a new connection, only when it went over a reused
      connection, nothing at all came back, and its body can be sent again: that is the
      server closing an idle keep-alive connection at the moment we reused it.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kakehashi import http1
from kakehashi.client import transport
from kakehashi.client.models import URL, Headers, PreparedBody, Response, Timeout
from kakehashi.client.pool import Origin, Pool, PooledConnection
from kakehashi.client.proxy import Proxies, Proxy
from kakehashi.errors import (
    ConnectError,
    ReadError,
    RemoteProtocolError,
    TransportError,
    WriteError,
)

__all__ = ["ConnectFunction", "Transport", "connect_socket", "receive_event"]

logger = logging.getLogger(__name__)

ConnectFunction = Callable[[Origin, float, ssl.SSLContext | None], transport.Stream]

_READ_SIZE = 64 * 1024
_WRITE_BATCH = 64 * 1024


def connect_socket(
    origin: Origin, timeout: float, context: ssl.SSLContext | None
) -> transport.Stream:
    """The default way to open a connection: TCP, and TLS for ``https``."""
    scheme, host, port = origin
    return transport.connect(host, port, timeout, tls=scheme == "https", ssl_context=context)


class _NothingReceived(Exception):
    """Internal: a reused connection failed before any response byte; safe to retry."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class _Exchange:
    """The state of one request on one connection, shared by the body reader and close()."""

    pooled: PooledConnection
    pool: Pool
    read_timeout: float
    started: float
    timings: dict[str, float]
    done: bool = False
    released: bool = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.done:
            self.pool.release(self.pooled)
        else:
            self.pool.discard(self.pooled)


class Transport:
    """The mechanics of sending one request and receiving its response.

    Args:
        pool: where kept-alive connections wait; a new :class:`Pool` when None.
        connect: opens a :class:`~kakehashi.client.transport.Stream` for an origin; tests pass
            an in-memory one.  Opens a socket (TLS for https) when None.
        ssl_context: the TLS context for https; the system default when None.
        limits: bounds on what the server may send (``http1.Limits``).
        proxies: which proxy serves which origin; none when None.  An ``http`` request goes
            to its proxy with the absolute URL as its target; an ``https`` one through a
            ``CONNECT`` tunnel, with TLS to the origin inside it.
    """

    def __init__(
        self,
        *,
        pool: Pool | None = None,
        connect: ConnectFunction | None = None,
        ssl_context: ssl.SSLContext | None = None,
        limits: http1.Limits = http1.DEFAULT_LIMITS,
        proxies: Proxies | None = None,
    ) -> None:
        self.pool = pool or Pool()
        self.proxies = proxies or Proxies()
        self._connect = connect or connect_socket
        self._ssl_context = ssl_context
        self._limits = limits
        self.connections_opened = 0

    def send(
        self,
        method: str,
        url: URL,
        fields: list[tuple[bytes, bytes]],
        body: PreparedBody | None,
        timeout: Timeout,
    ) -> Response:
        """Send one request and receive the response head; the body is read on demand.

        Returns:
            The response; read or close it to release the connection.

        Raises:
            ConnectError, ConnectTimeout, PoolTimeout: no connection could be had.
            WriteError, WriteTimeout: the request could not be sent (and no response came).
            ReadError, ReadTimeout: the response head did not arrive.
            RemoteProtocolError: the response head is malformed.
            LocalProtocolError: the request itself is illegal (a bad field, say).
        """
        retry_allowed = body is None or body.replay is not None
        while True:
            pooled, connect_time = self._checkout(url.origin, timeout)
            try:
                return self._exchange(pooled, method, url, fields, body, timeout, connect_time)
            except _NothingReceived as exc:
                self.pool.discard(pooled)
                if not retry_allowed:
                    raise exc.error from exc.error.__cause__
                logger.debug("connection #%d was closed by the server; retrying", pooled.id)
                retry_allowed = False
            except BaseException:
                self.pool.discard(pooled)
                raise

    def _checkout(self, origin: Origin, timeout: Timeout) -> tuple[PooledConnection, float]:
        pooled = self.pool.acquire(origin, timeout.pool)
        if pooled is not None:
            return pooled, 0.0
        start = time.monotonic()
        try:
            stream = self.open_stream(origin, timeout)
        except BaseException:
            self.pool.cancel(origin)
            raise
        self.connections_opened += 1
        pooled = PooledConnection(origin, stream, http1.Connection(http1.Role.CLIENT, self._limits))
        logger.debug("opened connection #%d to %s:%d", pooled.id, origin[1], origin[2])
        return pooled, time.monotonic() - start

    def open_stream(
        self, origin: Origin, timeout: Timeout, *, tunnel: bool = False
    ) -> transport.Stream:
        """A new stream to ``origin``: direct, to its proxy, or through a ``CONNECT`` tunnel.

        An https origin always goes through a tunnel when it has a proxy; an http one only
        when ``tunnel`` is true (a WebSocket: a proxy would not forward the upgrade).

        Raises:
            ConnectError, ConnectTimeout: the connection, the tunnel or TLS failed.
            ReadError, ReadTimeout, WriteError, WriteTimeout: talking to the proxy failed.
        """
        proxy = self.proxies.for_origin(origin)
        if proxy is None:
            return self._connect(origin, timeout.connect, self._ssl_context)
        stream = self._connect(proxy.origin, timeout.connect, None)
        if origin[0] != "https" and not tunnel:
            return stream
        try:
            self._tunnel(stream, proxy, origin, timeout)
        except BaseException:
            stream.close()
            raise
        scheme, host, port = origin
        if scheme != "https":
            return stream
        return transport.start_tls(stream, host, port, timeout.connect, self._ssl_context)

    def _tunnel(
        self, stream: transport.Stream, proxy: Proxy, origin: Origin, timeout: Timeout
    ) -> None:
        """Ask the proxy for a tunnel to ``origin`` (``CONNECT``) and wait for its 2xx."""
        conn = http1.Connection(http1.Role.CLIENT, self._limits)
        head = conn.send(proxy.connect_request(origin)) + conn.send(http1.EndOfMessage())
        stream.write(head, timeout.write)
        event = receive_event(conn, stream, timeout.read)
        while isinstance(event, http1.InformationalResponse):
            event = receive_event(conn, stream, timeout.read)
        where = f"{proxy.host}:{proxy.port}"
        if not isinstance(event, http1.Response):
            raise ReadError(f"the proxy {where} closed without answering CONNECT")
        if not 200 <= event.status_code < 300:
            reason = event.reason.decode("latin-1")
            raise ConnectError(
                f"the proxy {where} refused a tunnel to {origin[1]}:{origin[2]}: "
                f"{event.status_code} {reason}"
            )
        if conn.trailing_data[0]:
            raise RemoteProtocolError(f"the proxy {where} sent bytes before the tunnel opened")

    def _exchange(
        self,
        pooled: PooledConnection,
        method: str,
        url: URL,
        fields: list[tuple[bytes, bytes]],
        body: PreparedBody | None,
        timeout: Timeout,
        connect_time: float,
    ) -> Response:
        started = time.monotonic() - connect_time
        reused = pooled.requests > 0
        pooled.requests += 1
        target = url.target
        proxy = self.proxies.for_origin(url.origin) if url.scheme == "http" else None
        if proxy is not None:  # RFC 9112 §3.2.2: a proxy gets the absolute URL
            target = str(url)
            if proxy.authorization:
                fields = [*fields, (b"Proxy-Authorization", proxy.authorization.encode("ascii"))]
        request = http1.Request(method.encode("ascii"), target.encode("ascii"))
        request.headers = http1.Headers(fields)
        head_bytes = pooled.conn.send(request)
        sent_at = time.monotonic()
        early: http1.Response | None = None
        try:
            self._write_request(pooled, head_bytes, body, timeout.write)
        except WriteError as exc:
            early = self._early_response(pooled, exc, reused, timeout.read)
        timings = {"connect": connect_time, "send": time.monotonic() - sent_at}
        head = early or self._read_head(pooled, timeout.read, reused)
        timings["wait"] = time.monotonic() - sent_at - timings["send"]
        exchange = _Exchange(pooled, self.pool, timeout.read, started, timings)
        logger.debug("%s %s -> %d on #%d", method, url, head.status_code, pooled.id)
        return Response(
            status=head.status_code,
            reason=head.reason.decode("latin-1"),
            headers=Headers(head.headers),
            http_version=head.http_version.decode("ascii"),
            url=str(url),
            method=method,
            reused=reused,
            connection_id=pooled.id,
            request_head=head_bytes,
            timings=timings,
            _chunks=self._body(exchange),
            _on_close=exchange.release,
        )

    def _write_request(
        self, pooled: PooledConnection, head: bytes, body: PreparedBody | None, timeout: float
    ) -> None:
        conn, stream = pooled.conn, pooled.stream
        out = bytearray(head)
        if body is not None:
            for chunk in body.chunks():
                out += conn.send(http1.Data(chunk))
                if len(out) >= _WRITE_BATCH:
                    stream.write(bytes(out), timeout)
                    out.clear()
        out += conn.send(http1.EndOfMessage())
        stream.write(bytes(out), timeout)

    def _early_response(
        self, pooled: PooledConnection, error: WriteError, reused: bool, timeout: float
    ) -> http1.Response:
        """A write failed: the server may have answered already (a 413, say) and closed."""
        try:
            return self._read_head(pooled, timeout, reused)
        except _NothingReceived:
            raise _NothingReceived(error) from error
        except (TransportError, RemoteProtocolError):
            pass  # no answer after all: the write error is the one to report
        raise error

    def _read_head(self, pooled: PooledConnection, timeout: float, reused: bool) -> http1.Response:
        while True:
            try:
                event = self._next_event(pooled, timeout)
            except ReadError as exc:
                if reused and not pooled.conn.trailing_data[0]:
                    raise _NothingReceived(exc) from exc
                raise
            if isinstance(event, http1.Response):
                return event
            if isinstance(event, http1.InformationalResponse) and event.status_code < 100:
                # Workaround: http1 passes a status below 100 off as a 1xx (reported).
                raise RemoteProtocolError(f"malformed status code {event.status_code:03d}")
            if isinstance(event, http1.ConnectionClosed):
                error = ReadError("the server closed the connection without sending a response")
                if reused:
                    raise _NothingReceived(error)
                raise error
            if not isinstance(event, http1.InformationalResponse):
                raise RemoteProtocolError(f"unexpected {type(event).__name__} before a response")

    def _next_event(self, pooled: PooledConnection, timeout: float) -> http1.ReceivedEvent:
        """The next event on a pooled connection; see :func:`receive_event`."""
        return receive_event(pooled.conn, pooled.stream, timeout)

    def _body(self, exchange: _Exchange) -> Iterator[bytes]:
        pooled = exchange.pooled
        while True:
            event = self._next_event(pooled, exchange.read_timeout)
            if isinstance(event, http1.Data):
                if event.data:
                    yield event.data
            elif isinstance(event, http1.EndOfMessage):
                exchange.done = True
                exchange.timings["total"] = time.monotonic() - exchange.started
                return
            else:
                raise RemoteProtocolError(f"unexpected {type(event).__name__} in a body")

    def close(self) -> None:
        """Close every idle connection."""
        self.pool.close()


def receive_event(
    conn: http1.Connection, stream: transport.Stream, timeout: float
) -> http1.ReceivedEvent:
    """The next event, reading from the stream as long as http1 needs data.

    Raises:
        ReadError: the stream failed, or the server closed in the middle of a message.
        ReadTimeout: the server was silent for ``timeout`` seconds.
        RemoteProtocolError: what the server sent is malformed.
    """
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            if conn.trailing_data[1]:  # the peer closed: a message cut short
                raise ReadError(f"the server closed the connection early: {exc}") from exc
            raise
        if event is http1.NEED_DATA:
            conn.receive_data(stream.read(_READ_SIZE, timeout))
            continue
        if event is http1.PAUSED:
            raise RemoteProtocolError("the response ended while the request was incomplete")
        assert not isinstance(event, http1.Signal)
        return event
