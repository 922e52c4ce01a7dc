"""The opening handshake (RFC 6455 §4), both sides, on heads ``kakehashi.http1`` parsed.

No I/O here.  The server checks the :class:`~kakehashi.http1.Request` its parser already made
(no second parse of the head), and either builds the fields of the ``101 Switching Protocols``
answer or raises :class:`~kakehashi.errors.HandshakeError`, which :func:`refusal` turns into an
ordinary HTTP response.  The client builds its request and checks the server's answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from kakehashi.errors import HandshakeError, LocalProtocolError, LocalWebSocketError
from kakehashi.http1 import Framing, Headers, InformationalResponse, Request, Response
from kakehashi.http1 import validate_fields as _validate_fields
from kakehashi.websocket._deflate import (
    EXTENSION_NAME,
    DeflateParams,
    DeflateSettings,
    client_accept,
    client_offer,
    server_negotiate,
)

__all__ = [
    "Accepted",
    "ClientHandshake",
    "Refusal",
    "UpgradeRequest",
    "accept",
    "accept_key",
    "is_websocket_request",
    "parse_extensions",
    "read_upgrade_request",
    "refusal",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
# RFC 6455 §9.1: extension = token *( ";" token [ "=" (token | quoted-string) ] ).  A quoted
# value must be a token once unquoted, so escapes are never needed and are not accepted.
_PARAM = rb"[ \t]*;[ \t]*(" + _TOKEN + rb")(?:[ \t]*=[ \t]*(?:(" + _TOKEN + rb')|"([^"\\]*)"))?'
_PARAM_RE = re.compile(_PARAM)
_EXTENSION_RE = re.compile(rb"(" + _TOKEN + rb")((?:" + _PARAM + rb")*)[ \t]*")
# Fields a 101 gets from us; an application's extra headers must not set them.
_OURS = frozenset((b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions"))

Extension = tuple[str, list[tuple[str, str | None]]]


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2, item 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def parse_extensions(values: Iterable[bytes]) -> list[Extension]:
    """Parse ``Sec-WebSocket-Extensions`` field values into ``(name, [(param, value)])``.

    Raises:
        ValueError: a value does not follow the grammar of RFC 6455 §9.1.
    """
    out: list[Extension] = []
    for value in values:
        pos, end = 0, len(value)
        while pos < end:
            if value[pos] in b" \t,":  # empty list elements are ignored (RFC 9110 §5.6.1)
                pos += 1
                continue
            m = _EXTENSION_RE.match(value, pos)
            if m is None or (m.end() < end and value[m.end()] != 0x2C):
                raise ValueError(f"malformed extension list {value!r}")
            params: list[tuple[str, str | None]] = []
            for p in _PARAM_RE.finditer(m.group(2)):
                raw = p.group(2) if p.group(2) is not None else p.group(3)
                if raw is not None and _TOKEN_RE.fullmatch(raw) is None:
                    raise ValueError(f"quoted parameter value {raw!r} is not a token")
                params.append((p.group(1).decode().lower(), None if raw is None else raw.decode()))
            out.append((m.group(1).decode().lower(), params))
            pos = m.end()
    return out


def _tokens(headers: Headers, name: bytes) -> list[bytes]:
    return [t.lower() for t in headers.get_list(name)]


def is_websocket_request(request: Request) -> bool:
    """The request asks for a WebSocket (``Upgrade: websocket``); check it with
    :func:`read_upgrade_request`.  Other upgrades (h2c, ...) are served as plain HTTP."""
    return b"websocket" in _tokens(request.headers, b"upgrade")


@dataclass(slots=True)
class UpgradeRequest:
    """A checked WebSocket upgrade request: the key, and what the client offers."""

    request: Request
    key: bytes
    subprotocols: list[str]
    extensions: list[Extension]


def read_upgrade_request(request: Request) -> UpgradeRequest:
    """Check a WebSocket upgrade request (RFC 6455 §4.2.1).

    Raises:
        HandshakeError: ``status_hint`` 400 for a request that is not a valid upgrade (method,
            HTTP version, Upgrade, Connection, key, a body, malformed subprotocols or
            extensions); 426 with ``Sec-WebSocket-Version: 13`` for any version but 13.
    """
    headers = request.headers
    if request.method != b"GET":
        raise HandshakeError(f"a WebSocket upgrade must be a GET, not {request.method!r}")
    if request.http_version != b"1.1":
        raise HandshakeError("a WebSocket upgrade needs HTTP/1.1")
    if b"websocket" not in _tokens(headers, b"upgrade"):
        raise HandshakeError("missing Upgrade: websocket")
    if b"upgrade" not in _tokens(headers, b"connection"):
        raise HandshakeError("missing Connection: upgrade")
    if headers.get_all(b"sec-websocket-version") != [b"13"]:
        raise HandshakeError(
            "unsupported Sec-WebSocket-Version; this server speaks 13",
            426,
            ((b"Sec-WebSocket-Version", b"13"),),
        )
    keys = headers.get_all(b"sec-websocket-key")
    if len(keys) != 1 or not _is_key(keys[0]):
        raise HandshakeError("Sec-WebSocket-Key must be one base64 value of 16 bytes")
    if request.framing is not Framing.NONE:
        # The bytes after the head are frames; a body there would be read as one.
        raise HandshakeError("a WebSocket upgrade request cannot have a body")
    protocols = headers.get_list(b"sec-websocket-protocol")
    if any(_TOKEN_RE.fullmatch(p) is None for p in protocols):
        raise HandshakeError("Sec-WebSocket-Protocol must be a list of tokens")
    try:
        extensions = parse_extensions(headers.get_all(b"sec-websocket-extensions"))
    except ValueError as exc:
        raise HandshakeError(str(exc)) from None
    return UpgradeRequest(request, keys[0], [p.decode() for p in protocols], extensions)


def _is_key(key: bytes) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


@dataclass(slots=True)
class Accepted:
    """An accepted handshake: the 101's fields and what was agreed.

    On the server, :attr:`headers` are the fields to send with the 101 (see
    :meth:`response`); on the client, the fields the server sent.
    """

    headers: list[tuple[bytes, bytes]]
    subprotocol: str | None = None
    deflate: DeflateParams | None = None

    def response(self) -> InformationalResponse:
        """The ``101 Switching Protocols`` to hand to :meth:`kakehashi.http1.Connection.send`
        (or to ``write_response_head``)."""
        return InformationalResponse(101, Headers(self.headers), b"Switching Protocols")


def accept(
    upgrade: UpgradeRequest,
    *,
    subprotocol: str | None = None,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    deflate: DeflateSettings | None = None,
) -> Accepted:
    """Accept an upgrade: choose a subprotocol, negotiate compression, build the 101's fields.

    ``deflate`` None turns compression off; otherwise the client's first acceptable
    permessage-deflate offer is taken (none acceptable: no compression).

    Raises:
        LocalWebSocketError: ``subprotocol`` was not offered by the client, or
            ``extra_headers`` are malformed or set a field the handshake owns.
    """
    if subprotocol is not None and subprotocol not in upgrade.subprotocols:
        raise LocalWebSocketError(f"subprotocol {subprotocol!r} was not offered by the client")
    extra = list(extra_headers)
    for name, _ in extra:
        lname = name.lower()
        if lname in _OURS or (subprotocol is not None and lname == b"sec-websocket-protocol"):
            raise LocalWebSocketError(f"{name!r} is set by the handshake, not by extra headers")
    try:
        extra = _validate_fields(extra)
    except LocalProtocolError as exc:  # a field rule of HTTP, reported in this layer's terms
        raise LocalWebSocketError(str(exc)) from None
    headers = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", accept_key(upgrade.key)),
    ]
    if subprotocol is not None:
        headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode()))
    params = None
    if deflate is not None:
        agreed = server_negotiate(upgrade.extensions, deflate)
        if agreed is not None:
            params, value = agreed
            headers.append((b"Sec-WebSocket-Extensions", value))
    return Accepted(headers + extra, subprotocol, params)


@dataclass(slots=True)
class Refusal:
    """An HTTP answer that refuses an upgrade; the engine writes it with ``http1``."""

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def response(self) -> Response:
        return Response(self.status_code, Headers(self.headers))


def refusal(error: HandshakeError) -> Refusal:
    """The plain-text response for a failed server-side handshake."""
    body = str(error).encode("utf-8", "replace") + b"\n"
    headers = [
        *error.headers,
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
    ]
    return Refusal(error.status_hint, headers, body)


@dataclass(slots=True)
class ClientHandshake:
    """The client's side: the request to send and the check of the answer.

    Args:
        subprotocols: offered, in order of preference.
        deflate: None not to offer compression.
        key: the 16 random bytes of ``Sec-WebSocket-Key``; drawn from ``os.urandom`` if None.
    """

    subprotocols: tuple[str, ...] = ()
    deflate: DeflateSettings | None = None
    key: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if any(_TOKEN_RE.fullmatch(p.encode()) is None for p in self.subprotocols):
            raise LocalWebSocketError("subprotocols must be tokens")
        raw = self.key or os.urandom(16)
        if len(raw) != 16:
            raise LocalWebSocketError("a Sec-WebSocket-Key is 16 bytes")
        self.key = base64.b64encode(raw)

    def request(
        self, target: bytes, host: bytes, extra_headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Request:
        """The upgrade request, for :meth:`kakehashi.http1.Connection.send`."""
        fields = [
            (b"Host", host),
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Key", self.key),
            (b"Sec-WebSocket-Version", b"13"),
        ]
        if self.subprotocols:
            fields.append((b"Sec-WebSocket-Protocol", ", ".join(self.subprotocols).encode()))
        if self.deflate is not None:
            fields.append((b"Sec-WebSocket-Extensions", client_offer(self.deflate)))
        return Request(b"GET", target, Headers([*fields, *extra_headers]))

    def check_response(self, response: InformationalResponse | Response) -> Accepted:
        """Check the server's answer (RFC 6455 §4.1, the client's checks 1-6).

        Raises:
            HandshakeError: not a 101 (``status_hint`` is its status), a wrong or missing
                Upgrade, Connection or Sec-WebSocket-Accept, a subprotocol or an extension
                we did not offer.
        """
        if response.status_code != 101:
            raise HandshakeError(
                f"the server answered {response.status_code}, not 101", response.status_code
            )
        headers = response.headers
        if _tokens(headers, b"upgrade") != [b"websocket"]:
            raise HandshakeError("the 101 lacks Upgrade: websocket")
        if b"upgrade" not in _tokens(headers, b"connection"):
            raise HandshakeError("the 101 lacks Connection: upgrade")
        if headers.get_all(b"sec-websocket-accept") != [accept_key(self.key)]:
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        return Accepted(headers.raw(), self._subprotocol(headers), self._extension(headers))

    def _subprotocol(self, headers: Headers) -> str | None:
        chosen = headers.get_list(b"sec-websocket-protocol")
        if not chosen:
            return None
        if len(chosen) != 1 or chosen[0].decode("latin-1") not in self.subprotocols:
            raise HandshakeError(f"the server chose subprotocol {chosen!r}, not offered")
        return chosen[0].decode()

    def _extension(self, headers: Headers) -> DeflateParams | None:
        try:
            extensions = parse_extensions(headers.get_all(b"sec-websocket-extensions"))
        except ValueError as exc:
            raise HandshakeError(str(exc)) from None
        if not extensions:
            return None
        if self.deflate is None or len(extensions) != 1 or extensions[0][0] != EXTENSION_NAME:
            names = [name for name, _ in extensions]
            raise HandshakeError(f"the server chose extensions {names}, not offered")
        return client_accept(extensions[0][1], self.deflate)
