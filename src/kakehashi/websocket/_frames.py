"""Frames (RFC 6455 §5): opcodes, the frame header, serializing, and Close frame payloads.

No I/O here.  :func:`parse_frame_header` reads only a header, so the caller can check the
announced length against its limits before a single payload byte is buffered; the payload is
then taken as it arrives (:class:`kakehashi.websocket.Connection` does that).  Every rule a
header can break is checked here, at once, so that a frame announcing 2^63 bytes or using a
reserved opcode is refused after at most 14 bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from kakehashi.errors import LocalWebSocketError, RemoteWebSocketError
from kakehashi.websocket._mask import apply_mask

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "CloseCode",
    "FrameHeader",
    "Opcode",
    "check_close_code",
    "close_payload",
    "parse_close_payload",
    "parse_frame_header",
    "serialize_frame",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 §5.2); the other values are reserved and refused with 1002."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """The status codes of RFC 6455 §7.4.1 and the IANA registry."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: a Close frame without a code
    ABNORMAL = 1006  # never on the wire: the connection dropped without a Close frame
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


# RFC 6455 §5.5: control frames carry at most 125 bytes and are never fragmented.
MAX_CONTROL_PAYLOAD = 125
_OPCODES = {op.value: op for op in Opcode}
_CONTROL = frozenset((Opcode.CLOSE, Opcode.PING, Opcode.PONG))
# Codes a Close frame may carry: the registered ones except 1004 (reserved) and the three
# that only report what happened locally (1005, 1006, 1015); 3000-3999 are registered by
# libraries and frameworks, 4000-4999 are private (RFC 6455 §7.4.2).
_WIRE_CODES = frozenset((*range(1000, 1004), *range(1007, 1015)))

_HEAD = struct.Struct("!BB")
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")
_CODE = struct.Struct("!H")


@dataclass(slots=True)
class FrameHeader:
    """One frame header as received; ``size`` is its length in bytes on the wire."""

    fin: bool
    opcode: Opcode
    rsv: int  # the three RSV bits, RSV1 as 4
    length: int
    mask: bytes | None
    size: int

    @property
    def rsv1(self) -> bool:
        return bool(self.rsv & 4)


def parse_frame_header(
    buf: bytes | bytearray, pos: int = 0, rsv_allowed: int = 0
) -> FrameHeader | None:
    """Parse the frame header at ``buf[pos]``, or return None if it is not complete yet.

    ``rsv_allowed`` holds the RSV bits an extension negotiated (4 for permessage-deflate's
    RSV1); it is checked here only for data frames and must be re-checked by the caller for
    continuations, where no extension we know sets an RSV bit.

    Raises:
        RemoteWebSocketError: 1002 for a reserved opcode, an RSV bit no extension negotiated,
            a control frame fragmented or over 125 bytes, or a 64-bit length with its most
            significant bit set.
    """
    avail = len(buf) - pos
    if avail < 2:
        return None
    b0, b1 = _HEAD.unpack_from(buf, pos)
    opcode = _check_first_bits(b0, b1, rsv_allowed)
    fin = bool(b0 & 0x80)
    rsv = (b0 >> 4) & 7
    length = b1 & 0x7F
    size = 2
    if length == 126:
        if avail < 4:
            return None
        (length,) = _LEN16.unpack_from(buf, pos + 2)
        size = 4
    elif length == 127:
        if avail < 10:
            return None
        (length,) = _LEN64.unpack_from(buf, pos + 2)
        if length >> 63:
            raise RemoteWebSocketError("64-bit frame length with its most significant bit set")
        size = 10
    mask = None
    if b1 & 0x80:
        if avail < size + 4:
            return None
        mask = bytes(buf[pos + size : pos + size + 4])
        size += 4
    return FrameHeader(fin, opcode, rsv, length, mask, size)


def _check_first_bits(b0: int, b1: int, rsv_allowed: int) -> Opcode:
    """The opcode, after the checks the first two bytes allow."""
    opcode = _OPCODES.get(b0 & 0x0F)
    if opcode is None:
        raise RemoteWebSocketError(f"reserved opcode {b0 & 0x0F:#x}")
    rsv = (b0 >> 4) & 7
    if opcode in _CONTROL:
        if not b0 & 0x80:
            raise RemoteWebSocketError(f"fragmented {opcode.name} frame")
        if b1 & 0x7F > MAX_CONTROL_PAYLOAD:
            raise RemoteWebSocketError(f"{opcode.name} frame over 125 bytes")
        if rsv:
            raise RemoteWebSocketError(f"RSV bits set on a {opcode.name} frame")
    elif rsv & ~rsv_allowed:
        raise RemoteWebSocketError(f"RSV bits {rsv:#05b} set, but no extension negotiated them")
    return opcode


def serialize_frame(
    opcode: Opcode,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """A frame's bytes: the header, then ``payload`` masked with ``mask`` if one is given.

    The length uses the shortest of the three encodings, as RFC 6455 §5.2 requires.
    """
    n = len(payload)
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = _HEAD.pack(b0, bit | n)
    elif n < 65536:
        head = _HEAD.pack(b0, bit | 126) + _LEN16.pack(n)
    else:
        head = _HEAD.pack(b0, bit | 127) + _LEN64.pack(n)
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def check_close_code(code: int) -> None:
    """Raise unless ``code`` may be sent in a Close frame.

    Raises:
        LocalWebSocketError: 1004, 1005, 1006, 1015, or a code outside 1000-1014 and
            3000-4999.
    """
    if code not in _WIRE_CODES and not 3000 <= code <= 4999:
        raise LocalWebSocketError(f"close code {code} cannot be sent (RFC 6455 §7.4)")


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a Close frame: nothing, or the code and the UTF-8 reason.

    Raises:
        LocalWebSocketError: the code cannot be sent, a reason comes without a code, or the
            payload would exceed 125 bytes (the reason's limit is 123 UTF-8 bytes).
    """
    if code is None:
        if reason:
            raise LocalWebSocketError("a close reason needs a close code")
        return b""
    check_close_code(code)
    data = reason.encode("utf-8")
    if len(data) > MAX_CONTROL_PAYLOAD - 2:
        raise LocalWebSocketError(f"close reason of {len(data)} bytes; at most 123")
    return _CODE.pack(code) + data


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """The code and reason of a received Close frame; no payload means 1005 and no reason.

    Raises:
        RemoteWebSocketError: 1002 for a one-byte payload or a code not allowed on the wire,
            1007 for a reason that is not UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        raise RemoteWebSocketError("Close frame with a one-byte payload")
    (code,) = _CODE.unpack_from(payload)
    if code not in _WIRE_CODES and not 3000 <= code <= 4999:
        raise RemoteWebSocketError(f"Close frame with code {code}, not allowed on the wire")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteWebSocketError("close reason is not UTF-8", 1007) from None
    return code, reason
