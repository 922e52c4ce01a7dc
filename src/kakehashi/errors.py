"""The one exception hierarchy of kakehashi.

Every error the library raises on purpose derives from :class:`KakehashiError`, so
``except KakehashiError`` catches them all.  Protocol errors carry the HTTP status a server
should answer with (``status_hint``), so no caller ever needs an ``isinstance`` ladder to pick
a status code.

This is a leaf module: it imports nothing from kakehashi.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AppImportError",
    "BadRequest",
    "BuildError",
    "ClientDisconnected",
    "ClientError",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "HTTPError",
    "HandshakeError",
    "HandshakeInvalid",
    "HandshakeRefused",
    "KakehashiError",
    "LocalProtocolError",
    "LocalWebSocketError",
    "MethodNotAllowed",
    "NotFound",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "RemoteWebSocketError",
    "RouteConflictError",
    "TimeoutError",
    "TooManyRedirects",
    "TransportError",
    "WebSocketClosed",
    "WebSocketError",
    "WriteError",
    "WriteTimeout",
]


class KakehashiError(Exception):
    """Root of every error kakehashi raises on purpose."""


# --- protocol (kakehashi.http1) ------------------------------------------------------------


class ProtocolError(KakehashiError):
    """An HTTP/1.1 message broke the rules.

    ``status_hint`` is the status code a server should answer with (400 unless said otherwise).
    """

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class LocalProtocolError(ProtocolError):
    """We, or the application, tried to send something illegal: a bug on this side."""

    def __init__(self, message: str, status_hint: int = 500) -> None:
        super().__init__(message, status_hint)


class RemoteProtocolError(ProtocolError):
    """The peer sent something illegal.

    ``status_hint`` is 400, 408, 413, 414, 417, 431, 501 or 505.
    """


# --- WebSocket protocol (kakehashi.websocket) ------------------------------------------------


class WebSocketError(KakehashiError):
    """A WebSocket connection or its opening handshake broke the rules (RFC 6455, RFC 7692).

    ``close_code`` is the status code of the Close frame to send (RFC 6455 §7.4.1), as
    ``status_hint`` is for HTTP: 1002 unless said otherwise.
    """

    def __init__(self, message: str, close_code: int = 1002) -> None:
        super().__init__(message)
        self.close_code = close_code


class LocalWebSocketError(WebSocketError):
    """We, or the application, tried to send something illegal (a message after the close,
    a close code that is not for the wire, a control frame too long): a bug on this side."""

    def __init__(self, message: str, close_code: int = 1011) -> None:
        super().__init__(message, close_code)


class RemoteWebSocketError(WebSocketError):
    """The peer broke the protocol: ``close_code`` is 1002 (framing), 1007 (a text message or
    a close reason that is not UTF-8) or 1009 (a message over the size limit)."""


class WebSocketClosed(WebSocketError):
    """The WebSocket is closed, or closing: no message can be sent or received any more.

    ``close_code`` tells how it ended: the peer's Close code (1005 if its Close carried
    none), the code we failed the connection with (1002, 1007, 1009, 1011), or 1006 when the
    connection dropped without a close handshake.  ``reason`` is the Close frame's reason;
    ``ok`` is true for a normal end (a close handshake with 1000, 1001 or no code).
    """

    def __init__(self, message: str, close_code: int, reason: str = "", ok: bool = False) -> None:
        super().__init__(message, close_code)
        self.reason = reason
        self.ok = ok


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    On the server, ``status_hint`` is the HTTP status to refuse the upgrade with (400, or 426
    for an unsupported version) and ``headers`` the fields that answer must carry; on the
    client, the server's response was not a valid acceptance of our request.
    """

    def __init__(
        self,
        message: str,
        status_hint: int = 400,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message, 1002)
        self.status_hint = status_hint
        self.headers = headers


class HandshakeRefused(HandshakeError):
    """The server answered a client's upgrade request with a status other than 101.

    ``status_hint`` is that status; ``reason``, ``response_headers`` and ``body`` (its start
    only: a refusal's body is read for a person to see, not in full) are the server's answer,
    and ``request_head`` the upgrade request it answered, so ``kakehashi ws -v`` can show both.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        request_head: bytes = b"",
        response_headers: tuple[tuple[bytes, bytes], ...] = (),
        body: bytes = b"",
    ) -> None:
        said = f"{status} {reason}".rstrip()
        super().__init__(f"the server refused the WebSocket handshake with {said}", status)
        self.reason = reason
        self.request_head = request_head
        self.response_headers = response_headers
        self.body = body


class HandshakeInvalid(HandshakeError):
    """The server answered a client's upgrade request with a 101 that does not accept it (a
    wrong ``Sec-WebSocket-Accept``, an extension or subprotocol not offered).

    ``status``, ``reason`` and ``response_headers`` are that answer and ``request_head`` the
    request, so ``kakehashi ws -v`` can show both, as for a refusal.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 101,
        reason: str = "",
        request_head: bytes = b"",
        response_headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.request_head = request_head
        self.response_headers = response_headers


# --- configuration -------------------------------------------------------------------------


class ConfigError(KakehashiError, ValueError):
    """A setting is invalid; raised when the configuration is built, never later."""


class AppImportError(ConfigError, ImportError):
    """A ``module:attr`` application reference cannot be loaded."""


class RouteConflictError(ConfigError):
    """A route duplicates or makes another one ambiguous; raised at registration."""


# --- server --------------------------------------------------------------------------------


class ClientDisconnected(KakehashiError, ConnectionError):
    """The client went away while the application was still producing its response."""


# --- application framework -----------------------------------------------------------------


class HTTPError(KakehashiError):
    """An error an application raises to answer with an HTTP status.

    Attributes:
        status: the status code to answer with.
        description: a short human text for the body.
        headers: extra response headers, as ``(name, value)`` pairs.
    """

    status: int = 500
    default_description: str = "Internal Server Error"

    def __init__(
        self,
        description: str | None = None,
        *,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        self.description = description if description is not None else self.default_description
        self.headers: list[tuple[str, str]] = list(headers or [])
        super().__init__(self.description)


class BuildError(KakehashiError, LookupError):
    """``url_for`` cannot build a URL: unknown endpoint, missing or unfitting parameter."""


class BadRequest(HTTPError):
    status = 400
    default_description = "Bad Request"


class NotFound(HTTPError):
    status = 404
    default_description = "Not Found"


class MethodNotAllowed(HTTPError):
    """405; ``allowed`` becomes the ``Allow`` header."""

    status = 405
    default_description = "Method Not Allowed"

    def __init__(self, allowed: list[str] | tuple[str, ...] = (), description: str | None = None):
        self.allowed = sorted(set(allowed))
        super().__init__(description, headers=[("Allow", ", ".join(self.allowed))])


# --- client --------------------------------------------------------------------------------


class ClientError(KakehashiError):
    """Root of the client's errors."""


class TransportError(ClientError):
    """Something went wrong on the wire between the client and the server."""


class ConnectError(TransportError, ConnectionError):
    """The connection could not be opened."""


class ReadError(TransportError, ConnectionError):
    """Reading the response failed (reset, or the server closed mid-message)."""


class WriteError(TransportError, ConnectionError):
    """Sending the request failed."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """Root of the client's timeouts; also a builtin ``TimeoutError``."""


class ConnectTimeout(TimeoutError):
    """Opening the connection took too long."""


class ReadTimeout(TimeoutError):
    """The server was silent for too long."""


class WriteTimeout(TimeoutError):
    """The server would not take the request for too long."""


class PoolTimeout(TimeoutError):
    """No pooled connection became free in time."""


class TooManyRedirects(ClientError):
    """The redirect limit was reached."""
