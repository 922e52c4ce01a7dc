"""Byte streams to a server: TCP connect, optional TLS, timed reads and writes.

What it does: opens a socket to ``(host, port)`` (``socket.create_connection``), wraps it in
TLS for ``https``, and exposes it behind the small :class:`Stream` interface (``read``,
``write``, ``close``, ``is_readable``), so the HTTP machinery above can run over an in-memory
stream in unit tests.

What it must not do: parse or frame HTTP (that is ``kakehashi.http1``), pool connections, or
retry anything.

Invariants:
    * Every ``OSError`` (and ``ssl.SSLError``, ``socket.timeout``) is mapped to an error of
      ``kakehashi.errors`` here, at this boundary, and nowhere else: connect failures become
      ConnectError / ConnectTimeout, reads ReadError / ReadTimeout, writes WriteError /
      WriteTimeout.  The original exception is kept as ``__cause__``.
    * Every read, write and connect has a finite timeout; there is no blocking call without
      one.
    * A socket that failed to connect is closed before the error leaves this module.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
from typing import Protocol

from kakehashi.errors import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)

__all__ = ["SocketStream", "Stream", "connect", "default_ssl_context", "start_tls"]

logger = logging.getLogger(__name__)


class Stream(Protocol):
    """A bidirectional byte stream, as the HTTP machinery needs it."""

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` when the peer has closed.

        Raises:
            ReadTimeout: nothing arrived within ``timeout`` seconds.
            ReadError: the read failed (reset, broken connection).
        """
        ...

    def write(self, data: bytes, timeout: float) -> None:
        """Send all of ``data``.

        Raises:
            WriteTimeout: the peer would not take the data within ``timeout`` seconds.
            WriteError: the write failed.
        """
        ...

    def close(self) -> None:
        """Close the stream; closing twice is harmless."""
        ...

    def is_readable(self) -> bool:
        """Whether a read would not block; on an idle connection it means the peer closed."""
        ...


def default_ssl_context() -> ssl.SSLContext:
    """A context that verifies certificates and host names against the system store."""
    return ssl.create_default_context()


class SocketStream:
    """A :class:`Stream` over a connected (possibly TLS) socket.

    Args:
        sock: a connected socket; this object owns it from now on.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._closed = False

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """See :meth:`Stream.read`."""
        try:
            self.sock.settimeout(timeout)
            return self.sock.recv(max_bytes)
        except TimeoutError as exc:
            raise ReadTimeout(f"no data from the server for {timeout:g} s") from exc
        except OSError as exc:
            raise ReadError(f"reading the response failed: {exc}") from exc

    def write(self, data: bytes, timeout: float) -> None:
        """See :meth:`Stream.write`."""
        if not data:
            return
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise WriteTimeout(f"the server took no data for {timeout:g} s") from exc
        except OSError as exc:
            raise WriteError(f"sending the request failed: {exc}") from exc

    def shutdown_write(self) -> None:
        """Half-close: tell the peer we will send nothing more (TCP FIN).

        Raises:
            WriteError: the shutdown failed.
        """
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise WriteError(f"half-closing the connection failed: {exc}") from exc

    def interrupt(self) -> None:
        """Shut the socket down both ways, so that a read blocked in another thread returns
        at once (closing alone does not wake it); harmless on a closed socket."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed, or never connected: nothing blocks on it

    def is_readable(self) -> bool:
        """See :meth:`Stream.is_readable`; a closed stream counts as readable (unusable)."""
        if self._closed or self.sock.fileno() < 0:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        """See :meth:`Stream.close`."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - close() on a socket essentially never fails
            logger.debug("closing a socket failed", exc_info=True)

    @property
    def local_address(self) -> tuple[str, int]:
        """The local ``(host, port)``; tells connections apart."""
        name = self.sock.getsockname()
        return str(name[0]), int(name[1])


def connect(
    host: str,
    port: int,
    timeout: float,
    *,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> SocketStream:
    """Open a TCP connection, with TLS when ``tls`` is true.

    Args:
        host: a name or an address (IPv6 without brackets).
        port: the TCP port.
        timeout: seconds for the TCP connect and, separately, for the TLS handshake.
        tls: wrap the socket in TLS.
        ssl_context: the context to use; :func:`default_ssl_context` when None.
        server_hostname: the name to send in SNI and verify; ``host`` when None.

    Returns:
        The connected stream; the caller owns it and must close it.

    Raises:
        ConnectTimeout: the connect or handshake took longer than ``timeout``.
        ConnectError: the connection was refused, the name did not resolve, or TLS failed.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {host}:{port} took over {timeout:g} s") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        sock.close()
        raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
    if tls:
        sock = _wrap_tls(sock, server_hostname or host, port, timeout, ssl_context)
    logger.debug("connected to %s:%d%s", host, port, " (TLS)" if tls else "")
    return SocketStream(sock)


def start_tls(
    stream: Stream, host: str, port: int, timeout: float, ssl_context: ssl.SSLContext | None
) -> SocketStream:
    """TLS over an open stream (a tunnel through a proxy), verifying ``host``.

    Raises:
        ConnectTimeout: the handshake took longer than ``timeout``.
        ConnectError: TLS failed (the stream is closed), or the stream is not a socket.
    """
    if not isinstance(stream, SocketStream):
        stream.close()
        raise ConnectError("TLS needs a socket stream")
    return SocketStream(_wrap_tls(stream.sock, host, port, timeout, ssl_context))


def _wrap_tls(
    sock: socket.socket, host: str, port: int, timeout: float, context: ssl.SSLContext | None
) -> ssl.SSLSocket:
    """The TLS handshake on ``sock``; closes it when the handshake fails."""
    try:
        sock.settimeout(timeout)
        return (context or default_ssl_context()).wrap_socket(sock, server_hostname=host)
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeout(f"the TLS handshake with {host}:{port} timed out") from exc
    except OSError as exc:  # ssl.SSLError is an OSError
        sock.close()
        raise ConnectError(f"TLS with {host}:{port} failed: {exc}") from exc
