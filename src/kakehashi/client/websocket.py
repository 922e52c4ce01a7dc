"""A sync WebSocket client: :func:`connect` gives an open :class:`WebSocket`.

    >>> from kakehashi.client import websocket
    >>> with websocket.connect("ws://127.0.0.1:8000/chat") as sock:   # doctest: +SKIP
    ...     sock.send("hello")
    ...     print(sock.recv())

What it does: opens the connection with the HTTP client's own machinery (TCP, TLS for
``wss://`` with the same context rules, an ``http://`` proxy through a ``CONNECT`` tunnel,
chosen by the same ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` rules), does the opening
handshake with ``websocket.ClientHandshake`` over an ``http1`` client connection, and hands
the stream to :class:`~kakehashi.client.wsconnection.WebSocket`.

What it must not do: frame or parse WebSocket messages (``kakehashi.websocket`` does), or
map socket errors (``transport.py`` does, at its boundary).

Invariants:
    * Every phase of the opening has a finite timeout (connect, write, read of the 101).
    * A stream that failed to become a WebSocket is closed before the error leaves here.
"""

from __future__ import annotations

import ssl
import time
import urllib.parse

from kakehashi import http1
from kakehashi import websocket as ws
from kakehashi.client.api import USER_AGENT
from kakehashi.client.exchange import Transport, receive_event
from kakehashi.client.models import (
    DEFAULT_TIMEOUT,
    URL,
    Headers,
    HeadersInput,
    Timeout,
    header_pairs,
)
from kakehashi.client.proxy import Proxies
from kakehashi.client.transport import Stream
from kakehashi.client.wsconnection import Handshake, Message, WebSocket
from kakehashi.errors import (
    HandshakeError,
    HandshakeInvalid,
    HandshakeRefused,
    ReadError,
    RemoteProtocolError,
    TransportError,
)

__all__ = ["Handshake", "Message", "WebSocket", "connect", "parse_url"]

# Fields the handshake sets itself; a caller's headers may not (Host may be overridden).
_HANDSHAKE_FIELDS = frozenset(
    ("upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
     "sec-websocket-protocol", "sec-websocket-extensions")
)  # fmt: skip
_SCHEMES = {"ws": "http", "wss": "https"}
_BODY_SHOWN = 4096  # how much of a refusal's body is kept, for a person to read
_BODY_WAIT = 1.0  # the longest wait for it: the refusal, not its body, is the answer


def parse_url(url: str) -> URL:
    """A ``ws://`` or ``wss://`` URL, as the ``http``/``https`` URL of its handshake.

    Raises:
        ValueError: another scheme, a fragment (RFC 6455 §3 forbids one), no host, a bad
            port, or user info.
    """
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"a WebSocket URL starts with ws:// or wss://, not {url!r}")
    if parts.fragment or url.rstrip().endswith("#"):
        raise ValueError(f"a WebSocket URL cannot have a fragment: {url!r}")
    return URL.parse(urllib.parse.urlunsplit(parts._replace(scheme=_SCHEMES[scheme])))


def connect(
    url: str,
    *,
    subprotocols: tuple[str, ...] | list[str] = (),
    headers: HeadersInput = None,
    compression: bool | ws.DeflateSettings = True,
    proxies: Proxies | str | None = None,
    timeout: Timeout | float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    trust_env: bool = True,
    max_message_bytes: int = ws.DEFAULT_LIMITS.max_message_bytes,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    on_frame: ws.FrameHook | None = None,
) -> WebSocket:
    """Open a WebSocket.

    Args:
        url: ``ws://host[:port]/path?query`` or ``wss://...``.
        subprotocols: offered in order of preference; the server's choice is
            ``WebSocket.subprotocol``.
        headers: extra fields for the handshake (Origin, Authorization, Cookie...); the
            fields the handshake owns (Upgrade, Connection, Sec-WebSocket-*) are refused.
        compression: offer permessage-deflate (RFC 7692) with the default
            :class:`~kakehashi.websocket.DeflateSettings`, or with these; False not to.
        proxies: an ``http://[user:pw@]host:port`` proxy for every URL, or
            :class:`Proxies`; when None and ``trust_env``, the ``*_proxy`` variables decide
            (``ws`` uses ``http_proxy``, ``wss`` ``https_proxy``).  Always a tunnel.
        timeout: seconds for each phase, or a :class:`Timeout`: ``connect`` (TCP, tunnel,
            TLS), ``write`` (each send), ``read`` (the handshake's answer, and ``ping``).
        ssl_context: the TLS context for ``wss`` (verification on, system store, by default).
        trust_env: read the proxy variables from the environment.
        max_message_bytes: a bigger message from the server closes the WebSocket with 1009.
        ping_interval: after this many seconds without a byte from the server while a call
            waits, ping it; None: never.
        ping_timeout: give the server up (close code 1006) when the keepalive ping is not
            answered in this many seconds; None: never.
        close_timeout: the longest wait for each step of the close handshake.
        on_frame: called with every frame header received (``False``) and sent (``True``).

    Raises:
        ValueError: a malformed URL, header, subprotocol, timeout or proxy.
        ConnectError, ConnectTimeout: the connection, tunnel or TLS failed.
        ReadError, ReadTimeout, WriteError, WriteTimeout: the handshake could not be done.
        HandshakeRefused: the server answered with another status than 101 (a
            :class:`HandshakeError`; ``status_hint`` is the status, and it carries the
            request sent and the answer: head and the start of the body).
        HandshakeInvalid: the server answered with a 101 that is not a valid acceptance (a
            :class:`HandshakeError` carrying the request and the answer).
        RemoteProtocolError: the server's answer is not HTTP.
    """
    target = parse_url(url)
    limits = Timeout.of(timeout)
    extra, host = _extra_headers(headers, target.authority)
    deflate = _deflate(compression)
    handshake = ws.ClientHandshake(tuple(subprotocols), deflate)
    core_limits = ws.Limits(max_message_bytes=max_message_bytes)
    transport = Transport(ssl_context=ssl_context, proxies=Proxies.of(proxies, trust_env))
    stream = transport.open_stream(target.origin, limits, tunnel=True)
    try:
        opened, early = _open(stream, handshake, target.target, host, extra, limits.read)
        core = ws.Connection(
            ws.Role.CLIENT, limits=core_limits, deflate=opened.deflate, on_frame=on_frame
        )
    except BaseException:
        stream.close()
        raise
    return WebSocket(
        stream,
        core,
        opened,
        timeout=limits,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        early_data=early,
    )


def _deflate(compression: bool | ws.DeflateSettings) -> ws.DeflateSettings | None:
    if isinstance(compression, ws.DeflateSettings):
        return compression
    if not isinstance(compression, bool):
        raise ValueError(f"compression is True, False or DeflateSettings, not {compression!r}")
    return ws.DeflateSettings() if compression else None


def _extra_headers(
    headers: HeadersInput, authority: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The caller's fields (with a default User-Agent), and the Host to send.

    Raises:
        ValueError: a field the handshake owns, or a value that is not ISO-8859-1 text.
    """
    fields: list[tuple[bytes, bytes]] = []
    host = authority.encode("ascii")
    pairs = header_pairs(headers)
    if all(name.lower() != "user-agent" for name, _ in pairs):
        pairs.insert(0, ("User-Agent", USER_AGENT))
    for name, value in pairs:
        lower = name.lower()
        if lower in _HANDSHAKE_FIELDS:
            raise ValueError(f"{name} is set by the WebSocket handshake, not by headers")
        try:
            raw = (name.encode("ascii"), value.encode("latin-1"))
        except UnicodeEncodeError:
            raise ValueError(f"the header {name!r} is not ISO-8859-1 text") from None
        if lower == "host":
            host = raw[1]
        else:
            fields.append(raw)
    return fields, host


def _open(
    stream: Stream,
    handshake: ws.ClientHandshake,
    target: str,
    host: bytes,
    extra: list[tuple[bytes, bytes]],
    timeout: float,
) -> tuple[Handshake, bytes]:
    """The opening handshake: the upgrade request, then the server's 101.

    Returns:
        What was agreed, and the bytes the server sent after its 101 (frames already).
    """
    conn = http1.Connection(http1.Role.CLIENT)
    head = conn.send(handshake.request(target.encode("ascii"), host, extra))
    head += conn.send(http1.EndOfMessage())
    stream.write(head, timeout)
    deadline = time.monotonic() + timeout
    event = receive_event(conn, stream, timeout)
    while isinstance(event, http1.InformationalResponse) and event.status_code != 101:
        event = receive_event(conn, stream, max(deadline - time.monotonic(), 0.001))
    if not isinstance(event, http1.InformationalResponse | http1.Response):
        raise ReadError("the server closed the connection without answering the handshake")
    if isinstance(event, http1.Response):  # a final status: not 101, a refusal
        body = _body_start(conn, stream, max(deadline - time.monotonic(), 0.001))
        raise HandshakeRefused(
            event.status_code,
            event.reason.decode("latin-1"),
            request_head=head,
            response_headers=tuple(event.headers.raw()),
            body=body,
        )
    try:
        accepted = handshake.check_response(event)
    except HandshakeError as exc:
        reason = event.reason.decode("latin-1")
        raise HandshakeInvalid(
            f"{exc} ({event.status_code} {reason})",
            status=event.status_code,
            reason=reason,
            request_head=head,
            response_headers=tuple(event.headers.raw()),
        ) from None
    opened = Handshake(
        request_head=head,
        status_code=event.status_code,
        reason=event.reason.decode("latin-1"),
        headers=Headers(event.headers.raw()),
        subprotocol=accepted.subprotocol,
        deflate=accepted.deflate,
    )
    return opened, conn.trailing_data[0]


def _body_start(conn: http1.Connection, stream: Stream, timeout: float) -> bytes:
    """The first ``_BODY_SHOWN`` bytes of a refusal's body, or what came of them in time.

    A body cut short, late or malformed ends the reading quietly: the refusal is the error
    the caller gets, and the body is only there to explain it.
    """
    deadline = time.monotonic() + min(timeout, _BODY_WAIT)
    body = b""
    while len(body) < _BODY_SHOWN:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            event = receive_event(conn, stream, left)
        except (TransportError, RemoteProtocolError):  # ReadTimeout is a TransportError
            break
        if not isinstance(event, http1.Data):
            break
        body += event.data
    return body[:_BODY_SHOWN]
