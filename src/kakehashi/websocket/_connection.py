"""Connection: the sans-I/O WebSocket state machine (RFC 6455 §5-§7, RFC 7692), either role.

No I/O here: bytes come in through :meth:`Connection.receive_data`, events come out of
:meth:`Connection.next_event` (or :meth:`Connection.events`), and every ``send_*`` method
returns the bytes to write.  Replies the protocol owes the peer (pongs, the echo of a Close
frame, the Close frame that fails a connection) are queued by the core itself and taken with
:meth:`Connection.data_to_send`, so no engine can forget one.

Frames are parsed lazily, one event per call: an engine that stops asking for events (its
application's queue is full) leaves the bytes in the buffer, sees :attr:`Connection.buffered`
grow and pauses reading.  A data frame's payload is consumed as it arrives, so a text
message fails (1007) at the first piece holding a bad byte, and the message size limit is
checked against each frame header before its payload is buffered.

Rule: a :class:`~kakehashi.errors.RemoteWebSocketError` from ``next_event`` has already
queued the Close frame with its ``close_code`` and moved the connection to CLOSED; write
:meth:`Connection.data_to_send` and close the transport.
"""

from __future__ import annotations

import codecs
import enum
import os
import struct
from collections.abc import Callable, Iterator
from typing import Final

from kakehashi.errors import LocalWebSocketError, RemoteWebSocketError
from kakehashi.http1 import ReceiveBuffer, Role
from kakehashi.websocket._deflate import Deflate, DeflateParams
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
    FrameHeader,
    Opcode,
    close_payload,
    parse_close_payload,
    parse_frame_header,
    serialize_frame,
)
from kakehashi.websocket._mask import apply_mask

__all__ = ["Connection", "FrameHook"]

# Called with each frame header, and True for frames we send: the hook a debugger uses.
FrameHook = Callable[[FrameHeader, bool], None]
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_OPEN, _CLOSING, _CLOSED = ConnectionState.OPEN, ConnectionState.CLOSING, ConnectionState.CLOSED
_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
# The fast path's frames by their first byte (FIN, TEXT or BINARY, no RSV bit; with
# permessage-deflate RSV1 too): the opcode, and whether the payload is compressed.
_WHOLE = {0x81: (_TEXT, False), 0x82: (_BINARY, False)}
_WHOLE_DEFLATE = {**_WHOLE, 0xC1: (_TEXT, True), 0xC2: (_BINARY, True)}


class _Path(enum.Enum):
    GENERAL = "general"  # the fast path leaves a frame to the general one


_GENERAL: Final = _Path.GENERAL
_HEAD16 = struct.Struct("!BBH")  # a frame's first bytes with a 16-bit length
_HEAD64 = struct.Struct("!BBQ")  # and with a 64-bit one


def _random_mask() -> bytes:
    return os.urandom(4)


# From this many bytes a masked payload is unmasked straight from the receive buffer: a
# bytearray slice, then extracting, would each copy it once more.  Below, a slice is cheaper
# than a memoryview.
_BIG = 2048


def _unmask_at(raw: bytearray, start: int, n: int, key: bytes, offset: int = 0) -> bytes:
    """The ``n`` bytes at ``start`` of ``raw`` unmasked (``offset``: as in apply_mask).  The
    view is released on return, so the caller may then consume them (which can move
    ``raw``'s contents)."""
    with memoryview(raw) as view:
        return apply_mask(view[start : start + n], key, offset)


class Connection:
    """One open WebSocket seen from ``role``, after the handshake.

    Args:
        role: Role.SERVER expects masked frames and sends unmasked ones; Role.CLIENT the
            reverse (RFC 6455 §5.1).
        limits: bounds on what the peer may send.
        deflate: the permessage-deflate parameters agreed in the handshake, or None.
        mask_key: the client's source of 4-byte masking keys (tests pass a fixed one).
        on_frame: called with every frame header received and sent.
    """

    __slots__ = ("_buf", "_client", "_close_received", "_close_sent", "_deflate", "_eof",
                 "_frame", "_frame_got", "_hook", "_in_done", "_limits", "_mask_bit", "_mask_key",
                 "_msg", "_msg_deflate", "_msg_got", "_msg_op", "_out", "_out_op", "_plain_out",
                 "_pongs", "_rsv_allowed", "_text", "_utf8", "_whole", "role",
                 "state")  # fmt: skip

    def __init__(
        self,
        role: Role,
        *,
        limits: Limits = DEFAULT_LIMITS,
        deflate: DeflateParams | None = None,
        mask_key: Callable[[], bytes] = _random_mask,
        on_frame: FrameHook | None = None,
    ) -> None:
        self.role = role
        self.state = _OPEN
        self._client = role is Role.CLIENT
        self._limits = limits
        self._deflate = Deflate(deflate, self._client) if deflate is not None else None
        self._rsv_allowed = 4 if deflate is not None else 0
        self._whole = _WHOLE_DEFLATE if deflate is not None else _WHOLE
        self._mask_bit = 0 if self._client else 0x80  # the MASK bit the peer's frames carry
        # Our data frames need no mask, compression or hook: _send_data's fast path.
        self._plain_out = not self._client and deflate is None and on_frame is None
        self._mask_key = mask_key
        self._hook = on_frame
        self._buf = ReceiveBuffer()
        self._eof = False
        self._in_done = False  # no event will come any more
        self._frame: FrameHeader | None = None  # a data frame whose payload is arriving
        self._frame_got = 0
        self._msg_op = 0  # the message being reassembled: 0 none, TEXT or BINARY
        self._msg_deflate = False
        self._msg = bytearray()  # a binary message's payload so far
        # A text message's payload so far, as its pieces decoded: each piece is decoded once,
        # as it arrives (its UTF-8 checked then), and the pieces joined at the end.
        self._text: list[str] = []
        self._msg_got = 0  # the message's payload bytes so far (decompressed), either kind
        self._utf8: codecs.IncrementalDecoder | None = None
        self._out_op = 0  # the fragmented message we are sending, 0 if none
        self._out = bytearray()  # queued replies: pongs, then a Close frame
        self._pongs: list[bytes] = []
        self._close_sent: tuple[int, str] | None = None
        self._close_received: tuple[int, str] | None = None

    # -- facts -------------------------------------------------------------------------------

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """The code and reason of the Close frame we sent (1005: one without a code)."""
        return self._close_sent

    @property
    def close_received(self) -> tuple[int, str] | None:
        """The code and reason of the peer's Close frame, once it came."""
        return self._close_received

    @property
    def buffered(self) -> int:
        """Received bytes not parsed yet: the engine pauses reading when this grows."""
        return len(self._buf)

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; ``b""`` means the peer closed its side of the stream.

        Raises:
            LocalWebSocketError: data after the end of the stream.
        """
        if not data:
            self._eof = True
        elif self._eof:
            raise LocalWebSocketError("data received after the end of the stream")
        elif not self._in_done:  # after the close, bytes are ignored (RFC 6455 §5.5.1)
            self._buf.append(data)

    def events(self) -> Iterator[Event]:
        """Every event the received bytes complete; see :meth:`next_event`."""
        while (event := self.next_event()) is not None:
            yield event

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed (or none will ever come).

        Raises:
            RemoteWebSocketError: the peer broke the protocol; the Close frame with its
                ``close_code`` is queued (see the module's rule).
        """
        if self._in_done:
            return None
        try:
            if self._frame is None and not self._msg_op and self._hook is None:
                event = self._fast_message(self._buf)
                if event is not _GENERAL:
                    return event  # a message, or None: nothing more has arrived
            return self._next_event()
        except RemoteWebSocketError as exc:
            self._fail(exc.close_code, str(exc))
            raise

    def _next_event(self) -> Event | None:
        buf = self._buf
        while True:
            head = self._frame
            if head is None:
                head = parse_frame_header(buf.raw, buf.pos, self._rsv_allowed)
                if head is None:
                    return self._starved()
                self._check_header(head)
                buf.advance_to(buf.pos + head.size)
                if self._hook is not None:
                    self._hook(head, False)
                if head.opcode >= 8:
                    self._frame = head  # wait for the whole payload: at most 125 bytes
                elif head.fin and not self._msg_op and len(buf) >= head.length:
                    return self._whole_message(head)  # the usual case: one complete frame
                else:
                    self._start_data_frame(head)
            if head.opcode >= 8:
                if len(buf) < head.length:
                    return self._starved()
                self._frame = None
                payload = buf.extract(head.length)
                if head.mask is not None:
                    payload = apply_mask(payload, head.mask)
                return self._control(head.opcode, payload)
            event = self._data_piece(head)
            if self._frame is not None:
                return self._starved()
            if event is not None:
                return event

    def _starved(self) -> Event | None:
        """No complete event in the buffer: wait, or report the end of the stream."""
        if not self._eof:
            return None
        self._in_done = True
        self.state = _CLOSED
        return ConnectionLost()

    def _check_header(self, head: FrameHeader) -> None:
        if (head.mask is None) != self._client:
            side = "unmasked frame from a client" if head.mask is None else "masked frame"
            raise RemoteWebSocketError(f"{side} (RFC 6455 §5.1)")
        op = head.opcode
        if op >= 8:
            return
        if op == _CONT:
            if not self._msg_op:
                raise RemoteWebSocketError("continuation frame without a message to continue")
            if head.rsv:
                raise RemoteWebSocketError("RSV1 on a continuation frame")
        elif self._msg_op:
            raise RemoteWebSocketError("new message before the previous one was finished")
        limit = self._limits.max_message_bytes
        # Refused from the header alone, before any payload is buffered.  A compressed frame's
        # length is checked too; what it inflates to is bounded by Deflate.decompress.
        compressed = self._msg_deflate if op == _CONT else head.rsv1
        if head.length > limit or (not compressed and self._msg_got + head.length > limit):
            raise RemoteWebSocketError(f"message over the limit of {limit} bytes", 1009)

    def _fast_message(self, buf: ReceiveBuffer) -> Event | _Path | None:
        """Most messages, read without a FrameHeader: one frame, all of it received, while
        no other message is under way (the caller checked that).

        Only a frame that needs none of the general path's checks is taken: FIN, TEXT or
        BINARY, no RSV bit but a negotiated RSV1, masked as the role wants, a length within
        the limit.  Any other frame, or one not all received, gets
        ``_GENERAL``: the general way takes it, and finds its error if it has one (tests check
        that both paths give the same events).  None: the buffer is empty.
        """
        raw, pos = buf.raw, buf.pos
        avail = len(raw) - pos
        if avail < 2:
            return _GENERAL if avail or self._eof else None  # the usual: all was read
        kind = self._whole.get(raw[pos])
        b1 = raw[pos + 1]
        mask_bit = self._mask_bit
        if kind is None or b1 & 0x80 != mask_bit:
            return _GENERAL
        length = b1 & 0x7F
        start = pos + 2
        if length == 126:
            if avail < 4:
                return _GENERAL
            length = raw[start] << 8 | raw[start + 1]
            start += 2
        elif length == 127:  # a most significant bit set is over any limit: the general way
            if avail < 10:
                return _GENERAL
            length = int.from_bytes(raw[start : start + 8], "big")
            start += 8
        if mask_bit:
            start += 4
        end = start + length
        if end - pos > avail or length > self._limits.max_message_bytes:
            return _GENERAL
        if not mask_bit:
            payload = bytes(raw[start:end])
        elif length < _BIG:
            payload = apply_mask(raw[start:end], bytes(raw[start - 4 : start]))
        else:
            payload = _unmask_at(raw, start, length, bytes(raw[start - 4 : start]))
        buf.advance_to(end)
        return self._message(kind[0], kind[1], payload)

    def _whole_message(self, head: FrameHeader) -> Event:
        """A message in one frame, all of it in the buffer: no reassembly, one decode."""
        buf = self._buf
        if head.mask is None:
            payload = buf.extract(head.length)
        else:
            payload = _unmask_at(buf.raw, buf.pos, head.length, head.mask)
            buf.advance_to(buf.pos + head.length)
        return self._message(head.opcode, head.rsv1, payload)

    def _message(self, opcode: int, compressed: bool, payload: bytes) -> Event:
        """The event of a whole message's payload (unmasked, maybe compressed)."""
        if compressed:
            assert self._deflate is not None
            room = self._limits.max_message_bytes
            data = self._deflate.decompress(payload, room)
            payload = data + self._deflate.end_message(room - len(data))
        if opcode == _BINARY:
            return BytesMessage(payload)
        try:
            return TextMessage(payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise RemoteWebSocketError("text message is not valid UTF-8", 1007) from None

    def _start_data_frame(self, head: FrameHeader) -> None:
        if head.opcode != _CONT:
            self._msg_op = head.opcode
            self._msg_deflate = head.rsv1
            if head.opcode == _TEXT:
                self._utf8 = _Utf8Decoder()
        self._frame = head
        self._frame_got = 0

    def _data_piece(self, head: FrameHeader) -> Event | None:
        """Take what has arrived of a data frame's payload; a whole message when it ends."""
        buf = self._buf
        n = min(head.length - self._frame_got, len(buf))
        if n:
            if head.mask is None:
                piece = buf.extract(n)
            else:
                piece = _unmask_at(buf.raw, buf.pos, n, head.mask, self._frame_got)
                buf.advance_to(buf.pos + n)
            self._frame_got += n
            self._append(piece)
        if self._frame_got < head.length:
            return None
        self._frame = None
        if not head.fin:
            return None
        return self._end_message()

    def _append(self, piece: bytes) -> None:
        if self._msg_deflate:
            assert self._deflate is not None
            room = self._limits.max_message_bytes - self._msg_got
            piece = self._deflate.decompress(piece, room)
        self._take(piece)

    def _take(self, data: bytes) -> None:
        """Add payload (decompressed) to the message, checking a text message's UTF-8 now."""
        self._msg_got += len(data)
        if self._utf8 is None:
            self._msg += data
            return
        try:
            self._text.append(self._utf8.decode(data, False))
        except UnicodeDecodeError:
            raise RemoteWebSocketError("text message is not valid UTF-8", 1007) from None

    def _end_message(self) -> Event:
        if self._msg_deflate:
            assert self._deflate is not None
            self._take(self._deflate.end_message(self._limits.max_message_bytes - self._msg_got))
        msg, text, op, decoder = self._msg, self._text, self._msg_op, self._utf8
        self._msg, self._text, self._msg_got = bytearray(), [], 0
        self._msg_op, self._msg_deflate, self._utf8 = 0, False, None
        if op == _BINARY:
            return BytesMessage(bytes(msg))
        assert decoder is not None
        try:
            decoder.decode(b"", True)  # a sequence cut off at the end fails here
        except UnicodeDecodeError:
            raise RemoteWebSocketError("text message is not valid UTF-8", 1007) from None
        return TextMessage("".join(text))  # one piece: the piece itself, not a copy

    def _control(self, op: Opcode, payload: bytes) -> Event:
        if op == Opcode.PING:
            if self.state is _OPEN:
                pongs = self._pongs
                if len(pongs) >= self._limits.max_pending_pongs:
                    del pongs[0]
                pongs.append(payload)
            return Ping(payload)
        if op == Opcode.PONG:
            return Pong(payload)
        code, reason = parse_close_payload(payload)
        self._close_received = (code, reason)
        self._in_done = True
        self._buf = ReceiveBuffer()  # whatever follows a Close frame is ignored
        if self.state is _OPEN:
            # Echo the code (RFC 6455 §5.5.1); the reason is ours to give, and we give none.
            self._queue_close(None if code == 1005 else code, "")
        self.state = _CLOSED
        return CloseReceived(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): our Close frame, then nothing more."""
        self._in_done = True
        self._buf = ReceiveBuffer()
        if self.state is _OPEN:
            text = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
            self._queue_close(code, text)
        self.state = _CLOSED

    def _queue_close(self, code: int | None, reason: str) -> None:
        self._flush_pongs()
        self._out += self._frame_out(Opcode.CLOSE, close_payload(code, reason))
        self._close_sent = (code or 1005, reason)

    # -- sending -----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The replies the core queued (pongs, a Close frame), to write as they are."""
        self._flush_pongs()
        out = bytes(self._out)
        self._out.clear()
        return out

    def _flush_pongs(self) -> None:
        if self._pongs:
            if self.state is _OPEN:
                for payload in self._pongs:
                    self._out += self._frame_out(Opcode.PONG, payload)
            self._pongs.clear()

    def _frame_out(self, op: Opcode, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
        mask = self._mask_key() if self._client else None
        if self._hook is not None:
            size = 2 + (len(payload) >= 126) * 2 + (len(payload) >= 65536) * 6
            size += 4 if mask is not None else 0
            self._hook(FrameHeader(fin, op, rsv, len(payload), mask, size), True)
        return serialize_frame(op, payload, fin=fin, rsv=rsv, mask=mask)

    def _check_open(self) -> None:
        if self.state is not _OPEN:
            raise LocalWebSocketError(f"cannot send: the connection is {self.state.value}")

    def send_text(self, text: str, *, fin: bool = True) -> bytes:
        """A text message, or with ``fin=False`` the start or middle of a fragmented one.

        Raises:
            LocalWebSocketError: the connection is closing or closed, or another message's
                fragments are being sent.
        """
        return self._send_data(_TEXT, text.encode("utf-8"), fin)

    def send_bytes(self, data: bytes, *, fin: bool = True) -> bytes:
        """A binary message, or a fragment of one; see :meth:`send_text`."""
        return self._send_data(_BINARY, bytes(data), fin)

    def _send_data(self, op: Opcode, data: bytes, fin: bool) -> bytes:
        if self._plain_out and fin and not self._out_op and self.state is _OPEN:
            # The usual server message: one unmasked, uncompressed frame, no hook to tell.
            n = len(data)
            if n < 126:
                return bytes((0x80 | op, n)) + data
            if n < 65536:
                return _HEAD16.pack(0x80 | op, 126, n) + data
            return _HEAD64.pack(0x80 | op, 127, n) + data
        self._check_open()
        first = not self._out_op
        if not first and self._out_op != op:
            raise LocalWebSocketError("another message's fragments are being sent")
        rsv = 0
        if self._deflate is not None:
            data = self._deflate.compress(data, fin)
            rsv = 4 if first else 0
        self._out_op = 0 if fin else op
        return self._frame_out(op if first else _CONT, data, fin, rsv)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A Ping frame; the peer's Pong comes back as a :class:`Pong` event.

        Raises:
            LocalWebSocketError: over 125 bytes, or the connection is closing or closed.
        """
        return self._send_control(Opcode.PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """An unsolicited Pong frame (a one-way heartbeat, RFC 6455 §5.5.3)."""
        return self._send_control(Opcode.PONG, payload)

    def _send_control(self, op: Opcode, payload: bytes) -> bytes:
        self._check_open()
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalWebSocketError(f"{op.name} payload of {len(payload)} bytes; at most 125")
        return self._frame_out(op, bytes(payload))

    def send_close(self, code: int | None = 1000, reason: str = "") -> bytes:
        """Start the close handshake: the pongs still owed, then our Close frame.

        ``code`` None sends a Close frame without a code (the peer reports 1005).  Afterwards
        messages may still arrive until the peer's Close frame (:class:`CloseReceived`).

        Raises:
            LocalWebSocketError: a Close frame was already sent, the code cannot be sent
                (1004-1006, 1015, or outside 1000-1014 and 3000-4999), or the reason is
                over 123 UTF-8 bytes.
        """
        self._check_open()
        payload = close_payload(code, reason)
        self._flush_pongs()
        out = bytes(self._out) + self._frame_out(Opcode.CLOSE, payload)
        self._out.clear()
        self._close_sent = (code or 1005, reason)
        self.state = _CLOSING
        return out
