"""ReceiveBuffer: the bytes received and not yet consumed.

No I/O here.  Data is appended at the end and consumed from the front; the consumed prefix is
dropped lazily, only once it is at least half the buffer, so consuming is O(1) amortised.
Searches are bounded by the caller's limits, so a rescan of an incomplete line or head costs at
most that limit.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """A bytearray with a read position.  Owned by one Connection; not thread-safe."""

    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def __bytes__(self) -> bytes:
        return bytes(self._data[self._pos :])

    def append(self, data: bytes) -> None:
        self._data += data

    @property
    def raw(self) -> bytearray:
        """The underlying storage; valid bytes start at :attr:`pos`."""
        return self._data

    @property
    def pos(self) -> int:
        return self._pos

    def advance_to(self, pos: int) -> None:
        """Consume everything before ``pos`` (an absolute offset into :attr:`raw`)."""
        self._pos = pos
        if pos >= len(self._data):
            self._data.clear()
            self._pos = 0
        elif pos > 4096 and pos * 2 > len(self._data):
            del self._data[:pos]
            self._pos = 0

    def extract(self, count: int) -> bytes:
        """Consume and return up to ``count`` bytes."""
        start = self._pos
        out = bytes(self._data[start : start + count])
        self.advance_to(start + len(out))
        return out

    def extract_line(self, max_bytes: int) -> bytes | None:
        """Consume one line up to and including LF, or return None if no LF is within reach.

        Searches at most ``max_bytes + 1`` bytes, so a peer cannot make us scan an endless line.
        """
        end = self._data.find(b"\n", self._pos, self._pos + max_bytes + 1)
        if end < 0:
            return None
        return self.extract(end + 1 - self._pos)

    def find(self, needle: bytes, start: int = 0, end: int | None = None) -> int:
        """Offset of ``needle`` in ``[start, end)`` relative to the read position, or -1."""
        stop = len(self._data) if end is None else self._pos + end
        i = self._data.find(needle, self._pos + start, stop)
        return -1 if i < 0 else i - self._pos
