"""Body readers: turn received bytes into Data and EndOfMessage events, per framing.

No I/O here.  One reader per message, chosen by :func:`reader_for` from the framing the
parser decided (``_framing.py``), so the rules of RFC 9112 §6.3 and §7.1 live in one place.
Each reader consumes only the bytes of its own message: a pipelined next request stays in
the buffer untouched.
"""

from __future__ import annotations

from kakehashi.errors import RemoteProtocolError
from kakehashi.http1._abnf import CHUNK_HEADER_RE
from kakehashi.http1._buffer import ReceiveBuffer
from kakehashi.http1._events import Data, EndOfMessage, Framing, Limits
from kakehashi.http1._head import parse_fields
from kakehashi.http1._headers import Headers

__all__ = ["BodyReader", "ChunkedReader", "CloseReader", "ContentLengthReader", "reader_for"]


class ContentLengthReader:
    """Exactly ``length`` bytes (RFC 9112 §6.2)."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        if not self.remaining:
            return EndOfMessage()
        if not len(buf):
            return None
        data = buf.extract(self.remaining)
        self.remaining -= len(data)
        return Data(data)

    def read_eof(self) -> EndOfMessage:
        if self.remaining:
            raise RemoteProtocolError(
                f"connection closed with {self.remaining} bytes of the body missing"
            )
        return EndOfMessage()


class CloseReader:
    """Everything until the peer closes (responses only, RFC 9112 §6.3 step 8)."""

    __slots__ = ()

    def read(self, buf: ReceiveBuffer) -> Data | None:
        if not len(buf):
            return None
        return Data(buf.extract(len(buf)))

    def read_eof(self) -> EndOfMessage:
        return EndOfMessage()


class ChunkedReader:
    """The chunked transfer coding (RFC 9112 §7.1), with every length bounded.

    States: reading a chunk-size line, chunk data (``remaining`` bytes left), the CRLF after
    the data, the trailer section, done.
    """

    __slots__ = ("_limits", "_remaining", "_state", "_total", "_trailer_bytes", "_trailers")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state = "size"
        self._remaining = 0
        self._total = 0
        self._trailers: list[tuple[bytes, bytes]] = []
        self._trailer_bytes = 0

    def read(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        while True:
            if self._state == "data":
                if not len(buf):
                    return None
                data = buf.extract(self._remaining)
                self._remaining -= len(data)
                if not self._remaining:
                    self._state = "crlf"
                return Data(data)
            if self._state == "size":
                if not self._read_size(buf):
                    return None
            elif self._state == "crlf":
                if len(buf) < 2:
                    return None
                if buf.extract(2) != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                self._state = "size"
            else:
                return self._read_trailers(buf)

    def _read_size(self, buf: ReceiveBuffer) -> bool:
        # Limits count a line without its CRLF: up to max + 2 bytes may end in LF.
        line = buf.extract_line(self._limits.max_chunk_line_bytes + 1)
        if line is None:
            if len(buf) > self._limits.max_chunk_line_bytes + 1:
                raise RemoteProtocolError("chunk-size line too long")
            return False
        m = CHUNK_HEADER_RE.fullmatch(line)
        if m is None:
            raise RemoteProtocolError(f"malformed chunk-size line {line[:40]!r}")
        digits = m.group(1).lstrip(b"0")
        if len(digits) > 15:  # over 2**60: no body that large is acceptable
            raise RemoteProtocolError("chunk too large", 413)
        size = int(digits or b"0", 16)
        self._total += size
        if self._total > self._limits.max_body_bytes:
            raise RemoteProtocolError(
                f"chunked body exceeds the limit of {self._limits.max_body_bytes} bytes", 413
            )
        if size:
            self._state, self._remaining = "data", size
        else:
            self._state = "trailers"
        return True

    def _read_trailers(self, buf: ReceiveBuffer) -> EndOfMessage | None:
        # RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ) CRLF, bounded like a head:
        # each line is checked as it arrives, so a broken one is refused at once.
        limits = self._limits
        while True:
            line = buf.extract_line(limits.max_field_bytes + 1)
            if line is None:
                if len(buf) > limits.max_field_bytes + 1:
                    raise RemoteProtocolError("trailer field too large", 431)
                return None
            if line == b"\r\n":
                self._state = "done"
                return EndOfMessage(Headers(self._trailers))
            self._trailers.extend(parse_fields(line, limits))
            self._trailer_bytes += len(line)
            if len(self._trailers) > limits.max_fields:
                raise RemoteProtocolError("too many trailer fields", 431)
            if self._trailer_bytes > limits.max_header_bytes:
                raise RemoteProtocolError("trailer section too large", 431)

    def read_eof(self) -> EndOfMessage:
        raise RemoteProtocolError("connection closed in the middle of a chunked body")


BodyReader = ContentLengthReader | ChunkedReader | CloseReader


def reader_for(framing: Framing, length: int | None, limits: Limits) -> BodyReader:
    """The reader for a message whose head the parser has decided on."""
    if framing is Framing.CHUNKED:
        return ChunkedReader(limits)
    if framing is Framing.CLOSE:
        return CloseReader()
    return ContentLengthReader(length or 0)
