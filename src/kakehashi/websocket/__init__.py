"""kakehashi.websocket: a sans-I/O WebSocket core (RFC 6455, RFC 7692), beside ``http1``.

No sockets, threads, clocks or logging here: bytes in, events out; calls in, bytes out.  The
opening handshake works on the heads ``kakehashi.http1`` parsed; :class:`Connection` is the
state machine of an open WebSocket, with its limits (message size, bounded inflation) inside,
so no engine can forget one.  See docs/websocket.md, "The sans-I/O core".
"""

from kakehashi.http1 import Role
from kakehashi.websocket._connection import Connection, FrameHook
from kakehashi.websocket._deflate import Deflate, DeflateParams, DeflateSettings
from kakehashi.websocket._events import (
    DEFAULT_LIMITS,
    BytesMessage,
    CloseReceived,
    ConnectionLost,
    ConnectionState,
    Event,
    Limits,
    Ping,
    Pong,
    TextMessage,
)
from kakehashi.websocket._frames import (
    MAX_CONTROL_PAYLOAD,
    CloseCode,
    FrameHeader,
    Opcode,
    check_close_code,
    close_payload,
    parse_close_payload,
    parse_frame_header,
    serialize_frame,
)
from kakehashi.websocket._handshake import (
    Accepted,
    ClientHandshake,
    Refusal,
    UpgradeRequest,
    accept,
    accept_key,
    is_websocket_request,
    parse_extensions,
    read_upgrade_request,
    refusal,
)
from kakehashi.websocket._mask import apply_mask

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_CONTROL_PAYLOAD",
    "Accepted",
    "BytesMessage",
    "ClientHandshake",
    "CloseCode",
    "CloseReceived",
    "Connection",
    "ConnectionLost",
    "ConnectionState",
    "Deflate",
    "DeflateParams",
    "DeflateSettings",
    "Event",
    "FrameHeader",
    "FrameHook",
    "Limits",
    "Opcode",
    "Ping",
    "Pong",
    "Refusal",
    "Role",
    "TextMessage",
    "UpgradeRequest",
    "accept",
    "accept_key",
    "apply_mask",
    "check_close_code",
    "close_payload",
    "is_websocket_request",
    "parse_close_payload",
    "parse_extensions",
    "parse_frame_header",
    "read_upgrade_request",
    "refusal",
    "serialize_frame",
]
