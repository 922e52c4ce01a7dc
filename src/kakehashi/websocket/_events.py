"""The events of an open WebSocket, its states, and the limits that bound a peer.

No I/O here.  Events are plain dataclasses made by :class:`~kakehashi.websocket.Connection`;
messages are always whole (fragments are reassembled in the core, as ASGI apps expect).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kakehashi.errors import ConfigError

__all__ = [
    "DEFAULT_LIMITS",
    "BytesMessage",
    "CloseReceived",
    "ConnectionLost",
    "ConnectionState",
    "Event",
    "Limits",
    "Ping",
    "Pong",
    "TextMessage",
]


class ConnectionState(enum.Enum):
    OPEN = "open"  # messages flow both ways
    CLOSING = "closing"  # we sent a Close frame and wait for the peer's
    CLOSED = "closed"  # the close handshake is done, failed, or the peer vanished


@dataclass(slots=True)
class Limits:
    """Bounds on what a peer may send.

    ``max_message_bytes`` bounds one message after reassembly and decompression (1009): a
    frame whose header announces more is refused before its payload is buffered, and a
    compressed message is inflated at most this far.  16 MiB: uvicorn's ``--ws-max-size``.
    ``max_pending_pongs`` bounds the pongs owed and not yet taken by
    :meth:`Connection.data_to_send`; past it only the newest pings are answered, which RFC 6455
    §5.5.3 allows, so a peer sending pings faster than it reads cannot grow our buffer.
    """

    max_message_bytes: int = 16 << 20
    max_pending_pongs: int = 16

    def __post_init__(self) -> None:
        if self.max_message_bytes < 1:
            raise ConfigError("max_message_bytes must be positive")
        if self.max_pending_pongs < 1:
            raise ConfigError("max_pending_pongs must be positive")


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class TextMessage:
    """A whole text message, UTF-8 checked and decoded."""

    data: str


@dataclass(slots=True)
class BytesMessage:
    """A whole binary message."""

    data: bytes


@dataclass(slots=True)
class Ping:
    """The peer pinged; the pong is already queued in :meth:`Connection.data_to_send`."""

    payload: bytes


@dataclass(slots=True)
class Pong:
    """The peer answered a ping (or sent an unsolicited pong, as a heartbeat)."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer sent a Close frame: ``code`` 1005 if it carried none.

    If we had not closed yet, the echo is already queued in :meth:`Connection.data_to_send`.
    """

    code: int
    reason: str = ""


@dataclass(slots=True)
class ConnectionLost:
    """The stream ended without a close handshake: report 1006 (RFC 6455 §7.1.5)."""


Event = TextMessage | BytesMessage | Ping | Pong | CloseReceived | ConnectionLost
