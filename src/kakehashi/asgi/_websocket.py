"""The ``websocket`` cycle of one connection, seen from the server (asgiref ``www.rst``,
"WebSocket"): the scope, what the application may send, checked, and the bytes that go on the
wire for it; and what the peer sends, as the messages the application receives.

No I/O here: the engine hands in the checked upgrade request (``kakehashi.websocket``'s
:func:`~kakehashi.websocket.read_upgrade_request`, on the head ``http1`` parsed once), passes
each message the application sends to :meth:`WebSocketCycle.send` and writes what comes back,
feeds received bytes to :meth:`WebSocketCycle.receive_data` and asks
:meth:`WebSocketCycle.next_event` for what they make.  Frames, masking, fragments, pings,
UTF-8 and the size limit are the core's (:class:`kakehashi.websocket.Connection`).

The rules kept (docs/websocket.md, "ASGI", each with a test in tests/asgi/):

1. ``websocket.connect`` is answered before anything else: ``websocket.accept`` (a
   subprotocol the client offered, extra headers), ``websocket.close`` (an HTTP 403), or a
   denial: ``websocket.http.response.start`` and ``.body`` messages, any status and body
   (the ``websocket.http.response`` extension, advertised in the scope).
2. ``websocket.send`` carries exactly one of ``bytes`` and ``text``; ``websocket.close`` a
   code (1000 if none) and a reason (``""``).  An invalid message raises
   :class:`~kakehashi.errors.LocalProtocolError`; unknown extra keys are ignored.
3. Once the connection is closing or closed, ``send`` raises
   :class:`~kakehashi.errors.ClientDisconnected` (an ``OSError``, spec 2.4), unless it was
   the application that closed it: then its ``send`` is a bug and raises LocalProtocolError.
4. ``websocket.disconnect`` carries the peer's code (1005 if its Close frame had none; 1006
   when the stream ended without one) and, from spec 2.5, the reason.
5. The application ends: before accepting, a 403 (a 500 if it raised); with a denial under
   way, the connection is cut (never a response that looks whole); after accepting, a Close
   frame with 1000 (1011 if it raised).

Phases (:attr:`WebSocketCycle.phase`): CONNECTING until the connect is answered, DENYING while
a denial's body goes out, OPEN, CLOSING once we sent our Close frame, CLOSED.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from kakehashi.asgi._http import FieldCache, HTTPCycle, error_page
from kakehashi.asgi._scope import message_type
from kakehashi.errors import (
    ClientDisconnected,
    LocalProtocolError,
    LocalWebSocketError,
    RemoteWebSocketError,
)
from kakehashi.http1 import Role, write_response_head
from kakehashi.websocket import (
    Accepted,
    BytesMessage,
    Connection,
    DeflateSettings,
    Event,
    Limits,
    TextMessage,
    UpgradeRequest,
    accept,
)

__all__ = ["WS_EXTENSIONS", "WSPhase", "WebSocketCycle", "websocket_scope"]

# What every websocket scope offers (asgiref extensions.rst); "tls" is added per connection.
WS_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}


class WSPhase(enum.Enum):
    CONNECTING = "connecting"  # websocket.connect not answered yet
    DENYING = "denying"  # websocket.http.response.start came; its body goes out
    OPEN = "open"  # accepted: messages flow both ways
    CLOSING = "closing"  # we sent our Close frame; the peer's is awaited
    CLOSED = "closed"  # over: nothing more is sent


# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_CONNECTING, _DENYING, _OPEN = WSPhase.CONNECTING, WSPhase.DENYING, WSPhase.OPEN
_CLOSING, _CLOSED = WSPhase.CLOSING, WSPhase.CLOSED


def websocket_scope(http_scope: dict[str, Any], upgrade: UpgradeRequest) -> dict[str, Any]:
    """The ``websocket`` scope, from the ``http`` scope built for the same request (so the
    path, root path, headers and client follow the same rules); modified in place.

    ``scheme`` is ``ws`` or ``wss``; there is no ``method``; ``subprotocols`` are the
    client's, in its order; ``extensions`` offer ``websocket.http.response`` (and ``tls``
    if the HTTP scope had it)."""
    scope = http_scope
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    del scope["method"]
    scope["subprotocols"] = list(upgrade.subprotocols)
    extensions = dict(WS_EXTENSIONS)
    tls = scope["extensions"].get("tls")
    if tls is not None:
        extensions["tls"] = tls
    scope["extensions"] = extensions
    return scope


def _text(message: Mapping[str, Any], key: str, default: str) -> str:
    value = message.get(key, default)
    if value is None:
        return default
    if type(value) is not str:
        raise LocalProtocolError(f"{key!r} must be a str, not {type(value).__name__}")
    return value


class WebSocketCycle:
    """One WebSocket connection's ASGI side.

    Args:
        upgrade: the checked upgrade request.
        fields: the server's cache of checked response fields (for a denial).
        date: the current ``Date`` value (for a refusal's head).
        limits: bounds on what the peer may send (the core enforces them).
        deflate: permessage-deflate settings, or None to accept uncompressed only (the
            engine's budget of deflate contexts decides).

    ``status`` is what the access log shows: 101 once accepted, a denial's status, 403 or 500.
    """

    __slots__ = ("_app_closed", "_denial", "_fields", "accepted", "close_code", "conn",
                 "date", "deflate", "limits", "phase", "status", "upgrade")  # fmt: skip

    def __init__(
        self,
        upgrade: UpgradeRequest,
        fields: FieldCache,
        date: bytes,
        *,
        limits: Limits,
        deflate: DeflateSettings | None,
    ) -> None:
        self.upgrade = upgrade
        self._fields = fields
        self.date = date
        self.limits = limits
        self.deflate = deflate
        self.phase = _CONNECTING
        self.status = 0
        self.conn: Connection | None = None
        self.accepted: Accepted | None = None
        self.close_code: int | None = None  # the code the connection ended with
        self._denial: HTTPCycle | None = None
        self._app_closed = False

    # -- what the application sends ----------------------------------------------------------

    def send(self, message: Mapping[str, Any]) -> bytes:
        """The bytes that go on the wire for ``message`` (maybe empty).

        Raises:
            LocalProtocolError: an invalid message, or one not allowed in this phase.
            ClientDisconnected: the connection is closing or closed (and not by the
                application).
        """
        kind = message_type(message)
        phase = self.phase
        if kind == "websocket.send":
            if phase is _OPEN:
                return self._data(message)
        elif kind == "websocket.close":
            if phase is _CONNECTING:
                return self._refuse(403, "the application closed the WebSocket before accepting")
            if phase is _OPEN:
                self._app_closed = True
                return self.close(message.get("code", 1000), _text(message, "reason", ""))
        elif kind == "websocket.accept":
            if phase is _CONNECTING:
                return self._accept(message)
        elif kind in ("websocket.http.response.start", "websocket.http.response.body"):
            if phase in (_CONNECTING, _DENYING):
                return self._deny(kind, message)
        else:
            raise LocalProtocolError(f"unexpected ASGI message {kind!r} in a websocket cycle")
        if phase in (_CLOSING, _CLOSED) and not self._app_closed:
            raise ClientDisconnected(f"{kind}: the WebSocket is {phase.value}")
        raise LocalProtocolError(f"{kind} when the WebSocket is {phase.value}")

    def _accept(self, message: Mapping[str, Any]) -> bytes:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and type(subprotocol) is not str:
            raise LocalProtocolError(f"'subprotocol' must be a str or None, not {subprotocol!r}")
        headers = message.get("headers", ())
        field = self._fields.field
        try:
            lines = [field(item)[0] for item in headers]
        except TypeError:
            raise LocalProtocolError(f"headers must be an iterable, not {headers!r}") from None
        extra = [(line[: line.index(b":")], line[line.index(b":") + 2 : -2]) for line in lines]
        try:
            accepted = accept(
                self.upgrade, subprotocol=subprotocol, extra_headers=extra, deflate=self.deflate
            )
        except LocalWebSocketError as exc:
            raise LocalProtocolError(f"websocket.accept: {exc}") from None
        self.accepted = accepted
        self.conn = Connection(Role.SERVER, limits=self.limits, deflate=accepted.deflate)
        self.phase = _OPEN
        self.status = 101
        return write_response_head(101, accepted.headers)

    def _data(self, message: Mapping[str, Any]) -> bytes:
        data = message.get("bytes")
        text = message.get("text")
        conn = self.conn
        assert conn is not None
        if type(text) is str and data is None:  # the usual text message, checked at once
            return conn.send_text(text)
        if (data is None) == (text is None):
            raise LocalProtocolError("websocket.send needs exactly one of 'bytes' and 'text'")
        if text is not None:
            if type(text) is not str:
                raise LocalProtocolError(f"'text' must be a str, not {type(text).__name__}")
            return conn.send_text(text)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LocalProtocolError(f"'bytes' must be bytes, not {type(data).__name__}")
        return conn.send_bytes(bytes(data))

    def close(self, code: object = 1000, reason: str = "") -> bytes:
        """Our Close frame (the application's, or the server's: shutdown, a dead peer).

        Raises:
            LocalProtocolError: a code that cannot be sent, or a reason over 123 bytes.
        """
        conn = self.conn
        assert conn is not None
        if type(code) is not int:
            raise LocalProtocolError(f"'code' must be an int, not {code!r}")
        try:
            out = conn.send_close(code, reason)
        except LocalWebSocketError as exc:
            raise LocalProtocolError(f"websocket.close: {exc}") from None
        self.phase = _CLOSING
        self.close_code = code
        return out

    def _refuse(self, status: int, detail: str) -> bytes:
        self.phase = _CLOSED
        self.status = status
        return error_page(status, detail, self.date)

    def _deny(self, kind: str, message: Mapping[str, Any]) -> bytes:
        denial = self._denial
        if denial is None:
            denial = self._denial = HTTPCycle(self.upgrade.request, self._fields, self.date)
            denial.keep_alive = False  # what follows the request would be frames: never reused
        forwarded = dict(message)
        forwarded["type"] = kind.replace("websocket.http.", "http.")
        if forwarded["type"] == "http.response.start" and forwarded.get("trailers"):
            raise LocalProtocolError("a WebSocket denial cannot have trailers")
        out = denial.send(forwarded)
        self.phase = _DENYING
        self.status = denial.status
        if denial.complete:
            self.phase = _CLOSED
        if type(out) is list:
            return b"".join(out)
        assert type(out) is bytes
        return out

    @property
    def denial_started(self) -> bool:
        """A denial's head went out: a failure now can only cut the connection."""
        return self._denial is not None and self._denial.head_sent

    def app_ended(self, failed: bool) -> bytes | None:
        """The application returned (or raised, ``failed``): the bytes that end the
        connection, or None when it must be cut (a denial under way)."""
        phase = self.phase
        if phase is _CONNECTING:
            if failed:
                return self._refuse(500, "the application failed")
            return self._refuse(403, "the application ended without accepting the WebSocket")
        if phase is _DENYING:
            if self.denial_started:
                self.phase = _CLOSED
                return None
            return self._refuse(500, "the application ended its denial before its body")
        if phase is _OPEN:
            return self.close(1011 if failed else 1000)
        return b""

    # -- what the peer sends -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received after the 101 (``b""``: the peer closed its side)."""
        assert self.conn is not None
        self.conn.receive_data(data)

    def next_event(self) -> Event | None:
        """The next event of the core, None when more bytes are needed.

        Raises:
            RemoteWebSocketError: the peer broke the protocol; our Close frame with its
                code is queued (:meth:`data_to_send`) and the cycle is CLOSED.
        """
        conn = self.conn
        assert conn is not None
        try:
            return conn.next_event()
        except RemoteWebSocketError:
            self.phase = _CLOSED
            self.close_code = conn.close_sent[0] if conn.close_sent else 1002
            raise

    def data_to_send(self) -> bytes:
        """Replies the core owes the peer (pongs, the echo of its Close frame)."""
        return self.conn.data_to_send() if self.conn is not None else b""

    def ping(self, payload: bytes) -> bytes:
        """A Ping frame of the server's keepalive (empty when the connection is not open)."""
        if self.phase is not _OPEN or self.conn is None:
            return b""
        return self.conn.send_ping(payload)

    @staticmethod
    def message(event: TextMessage | BytesMessage) -> dict[str, Any]:
        """A whole message from the peer, as ``websocket.receive``."""
        if event.__class__ is TextMessage:
            return {"type": "websocket.receive", "text": event.data}
        return {"type": "websocket.receive", "bytes": event.data}

    def ended(self, code: int, reason: str = "") -> dict[str, Any]:
        """The connection is over (the peer's Close frame, a failure, the stream's end):
        the ``websocket.disconnect`` the application receives."""
        self.phase = _CLOSED
        if self.close_code is None:
            self.close_code = code
        return {"type": "websocket.disconnect", "code": code, "reason": reason}
