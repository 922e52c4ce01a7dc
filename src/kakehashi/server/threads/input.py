"""``wsgi.input`` for bodies streamed to the application while it runs.

No framing rules here: those are kakehashi.http1's body readers; this file only feeds them
from the socket.  A body small enough to be read before the application starts is handed
over as a :class:`BufferedInput` instead (see channel.py), and every chunked body is read
whole too (past ``--buffer-body-size`` into a file: parked_body.py); this stream serves
large ``Content-Length`` bodies and ``Expect: 100-continue`` requests with one, whose
``100 Continue`` is sent only when the application first reads (RFC 9110 §10.1.1).

Owned by the worker thread running the request; never read past the body, so a pipelined
next request stays in :meth:`leftover`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from kakehashi.errors import ClientDisconnected, RemoteProtocolError
from kakehashi.http1 import BodyReader, EndOfMessage, ReceiveBuffer
from kakehashi.server.net.sockio import recv_some, send_all

__all__ = ["CONTINUE", "BufferedInput", "StreamingInput"]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_RECV_BYTES = 256 * 1024


class _Lines:
    """``readlines`` and iteration for a stream that has ``readline`` (PEP 3333 asks all three)."""

    def readline(self, size: int | None = -1) -> bytes:
        raise NotImplementedError

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class StreamingInput(_Lines):
    """A file-like, read-only body (PEP 3333 ``wsgi.input``).

    Attributes:
        error: the RemoteProtocolError the body ended with, if the client broke the framing;
            the server answers it once the application returns.
        continue_sent: whether ``100 Continue`` went out.
    """

    def __init__(
        self,
        sock: socket.socket,
        reader: BodyReader,
        leftover: bytes,
        timeout: float,
        expect_continue: bool,
        prefix: bytes = b"",
        min_rate: int = 0,
    ) -> None:
        self._sock = sock
        self._reader = reader
        self._buf = ReceiveBuffer()
        self._buf.append(leftover)
        self._timeout = timeout
        self._min_rate = min_rate
        self._started = 0.0  # when the application first waited for the body
        self._received = 0  # raw body bytes received while it waited
        self._must_continue = expect_continue
        self.continue_sent = False
        # Body bytes received and not yet returned, and how many of them are known to hold no
        # LF: each byte is appended, searched and copied out once, so reading a body that
        # arrives in tiny pieces stays linear (issue 8: 1 MiB of one-byte chunks through
        # readline() used to cost 25 s, rescanning and re-joining a growing bytes object).
        self._pending = ReceiveBuffer()
        if prefix:  # body bytes read (and decoded) before the application ran
            self._pending.append(prefix)
        self._scanned = 0
        self.done = False
        self.error: RemoteProtocolError | None = None
        self.bytes_read = len(prefix)

    @property
    def awaiting_continue(self) -> bool:
        """Whether ``100 Continue`` is still owed: the client has not sent the body yet."""
        return self._must_continue

    def _next(self) -> bytes:
        """The next piece of body, or b"" at its end."""
        if self.done:
            return b""
        if self._must_continue:
            self._must_continue = False
            send_all(self._sock, CONTINUE, self._timeout)
            self.continue_sent = True
        while True:
            try:
                event = self._reader.read(self._buf)
                if event is None:
                    data = self._receive()
                    if data:
                        self._buf.append(data)
                        continue
                    event = self._reader.read_eof()
            except RemoteProtocolError as exc:
                self.error = exc
                self.done = True
                raise
            if isinstance(event, EndOfMessage):
                self.done = True
                return b""
            self.bytes_read += len(event.data)
            return event.data

    def _receive(self) -> bytes:
        """More of the body from the socket (b"" at EOF), held to the same rules as a parked
        body: a byte within ``timeout``, and once the body has taken ``timeout``, an average
        of at least ``min_rate`` bytes a second.  A client too slow gets a 408.

        Raises:
            RemoteProtocolError: 408, the client is too slow.
            ClientDisconnected: the connection broke.
        """
        now = time.monotonic()
        self._started = self._started or now
        wait, why = self._timeout, f"body timeout ({self._timeout:g}s without a byte)"
        if self._min_rate:
            left = self._started + self._timeout + self._received / self._min_rate - now
            if left < wait - 0.01:  # (with nothing received yet the two rules agree)
                wait, why = left, f"body slower than {self._min_rate} B/s"
        if wait <= 0:
            raise RemoteProtocolError(why, 408)
        try:
            data = recv_some(self._sock, _RECV_BYTES, wait)
        except ClientDisconnected:
            if time.monotonic() - now >= wait * 0.9:  # it waited its time out: too slow
                raise RemoteProtocolError(why, 408) from None
            raise
        self._received += len(data)
        return data

    def _take(self, count: int) -> bytes:
        out = self._pending.extract(count)
        self._scanned = max(0, self._scanned - len(out))
        return out

    def read(self, size: int | None = -1) -> bytes:
        pending = self._pending
        if size is None or size < 0:
            parts = [self._take(len(pending))]
            while piece := self._next():
                parts.append(piece)
            return b"".join(parts)
        while len(pending) < size and not self.done:
            pending.append(self._next())
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        pending = self._pending
        limit = size if size is not None and size >= 0 else -1
        while True:
            stop = len(pending) if limit < 0 else min(limit, len(pending))
            end = pending.find(b"\n", self._scanned, stop)
            if end >= 0:
                return self._take(end + 1)
            self._scanned = stop  # only bytes that arrive later are searched next time
            if stop == limit or self.done:
                return self._take(stop)
            pending.append(self._next())

    def drain(self, max_bytes: int) -> bool:
        """Read and drop the rest of the body, at most ``max_bytes``; True if it ended.

        A body the application did not read must be consumed before the connection can carry
        another request.  If ``100 Continue`` was never sent, the client is still waiting to
        send it, so it is not asked for: the connection is closed instead.
        """
        if self._must_continue:
            return False
        self._take(len(self._pending))
        try:
            while not self.done and max_bytes > 0:
                max_bytes -= len(self._next())
        except (RemoteProtocolError, ClientDisconnected):
            return False
        return self.done

    def leftover(self) -> bytes:
        """Bytes received after the body: the start of a pipelined next request."""
        return bytes(self._buf)


class BufferedInput(_Lines):
    """A file-like, read-only body that was read in full before the application ran.

    Reads copy out of the buffer the body was received into, once (``io.BytesIO`` would
    copy a bytearray whole first).  The buffer may be longer than the body (``length``): it
    comes from a pool, and goes back to it once :meth:`close` released it.  An anonymous
    ``mmap`` as the buffer was tried, to hand large bodies' memory straight back to the
    kernel: RSS after 1 MiB POSTs fell from 135 to 28 MiB, but faulting its pages in cut
    their throughput by more than half.
    """

    def __init__(self, buf: bytearray, length: int | None = None) -> None:
        self._buf = buf
        self._len = len(buf) if length is None else length
        self._view = memoryview(buf)[: self._len]
        self._pos = 0

    def _end(self, size: int | None) -> int:
        if size is None or size < 0:
            return self._len
        return min(self._len, self._pos + size)

    def read(self, size: int | None = -1) -> bytes:
        # The hot path of an upload (one call per chunk the application reads): no helper
        # call, and the slice clamps at the body's end by itself.
        pos = self._pos
        out = self._view[pos : self._len if size is None or size < 0 else pos + size].tobytes()
        self._pos = pos + len(out)
        return out

    def readline(self, size: int | None = -1) -> bytes:
        limit = self._end(size)
        newline = self._buf.find(b"\n", self._pos, limit)
        return self.read((newline + 1 if newline >= 0 else limit) - self._pos)

    def close(self) -> None:
        """Drop the body (the application may hold on to the stream after the response);
        the buffer is free for another body after this."""
        self._view.release()
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._len = self._pos = 0
