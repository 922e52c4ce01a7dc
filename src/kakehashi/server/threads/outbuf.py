"""OutputBuffer: the part of a response the kernel did not take yet, for one connection.

The thread running the application writes straight to the socket while the kernel takes the
bytes; only what it refuses lands here, so a response that fits in the socket's send buffer
never touches this module.  What lands here is held in order, as:

- pieces in memory (the application's own ``bytes``, or views of them: never copied), up to
  ``memory_limit`` bytes (``--output-buffer-memory``);
- beyond that, spooled to temporary files (spool.py: small pieces are gathered into one
  ``writev`` of up to 256 KiB; a file is closed once sent, and a new one started every
  16 MiB, so a long stream never leaves a large file behind it);
- file regions (``wsgi.file_wrapper``): a descriptor, an offset and a count, sent with
  ``os.sendfile``; the application's file is closed (``done``) once its region is sent.

Spooled files go out with ``os.sendfile`` too, so nothing is read back into Python (over
TLS, which the kernel cannot encrypt for, they and file regions are read and sent instead:
sockio.send_file).

A list body the application already built is ``hold``-ed by reference: its memory was spent
by the application, and copying or spooling it would only add to that; it is not counted
against ``memory_limit``.

Owned by whichever thread owns the connection (channel.py's rules); not thread-safe.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Protocol

from kakehashi.errors import ClientDisconnected
from kakehashi.server.engine.pace import SendPace
from kakehashi.server.net.sockio import TLS_SEND_BYTES, send_file
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.spool import STAGE_BYTES, Spool

__all__ = ["OutputBuffer", "OutputSink", "log_dropped"]

_SEND_PIECES = 64  # pieces per sendmsg (IOV_MAX is 1024; more buys nothing)
_SPOOL_FILE_BYTES = 16 << 20  # a spool file takes no more; then the next one starts
_SENDFILE_MAX = 1 << 30


class _FileRegion:
    """``count`` bytes of file ``fd`` from ``offset``; ``done`` runs once it is sent."""

    __slots__ = ("count", "done", "fd", "offset")

    def __init__(self, fd: int, offset: int, count: int, done: Callable[[], object]) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.done = done

    def __len__(self) -> int:
        return self.count


_Piece = bytes | memoryview


class OutputBuffer:
    """Queued output of one connection.

    Attributes:
        total: bytes queued (memory, spool and file regions).
        memory: bytes held in memory against ``memory_limit`` (spool staging included).
        held: bytes of a ``hold``-ed list body still queued (in memory, not counted above).
        in_files: bytes of file regions still queued.
        limit: over this many ``bounded`` bytes the application's thread waits (task.py).
        complete: the response was queued to its end (False: it was cut short).
        truncated: a file region ended early (its file shrank): the response fell short.
        pace: the progress and rate rules the client is held to while bytes wait.
        peak_memory, peak_total: the most ever held, for tests and debugging.
        sent_direct: bytes of the response the application's thread sent itself (for logs).
        on_discard: called once, with the bytes never sent, when the buffer is discarded
            (sent to its end, or dropped): the access line waits for it (task.py).
    """

    __slots__ = (
        "_items",
        "complete",
        "held",
        "in_files",
        "limit",
        "memory",
        "memory_limit",
        "on_discard",
        "pace",
        "peak_memory",
        "peak_total",
        "sent_direct",
        "total",
        "truncated",
    )

    def __init__(self, memory_limit: int, limit: int, pace: SendPace) -> None:
        self._items: deque[_Piece | Spool | _FileRegion] = deque()
        self.memory_limit = memory_limit
        self.limit = limit
        self.pace = pace
        self.total = self.memory = self.held = self.in_files = 0
        self.peak_memory = self.peak_total = 0
        self.complete = self.truncated = False
        self.sent_direct = 0
        self.on_discard: Callable[[int], object] | None = None

    @property
    def bounded(self) -> int:
        """Bytes the buffer took from the application (memory and spool), which the limit
        bounds; a held list body and file regions cost nothing more by waiting."""
        return self.total - self.held - self.in_files

    # -- queueing ----------------------------------------------------------------------------

    def append(self, data: _Piece) -> None:
        """Queue ``data`` (not copied while it stays in memory)."""
        size = len(data)
        items = self._items
        tail = items[-1] if items else None
        self.total += size
        if type(tail) is Spool or self.memory + size > self.memory_limit:
            self._spool(data, tail)
        else:
            items.append(data)
            self.memory += size
        self.peak_memory = max(self.peak_memory, self.memory)
        self.peak_total = max(self.peak_total, self.total)

    def _spool(self, data: _Piece, tail: object) -> None:
        if type(tail) is Spool and tail.written < _SPOOL_FILE_BYTES:
            spool = tail
        else:
            spool = Spool()
            self._items.append(spool)
        size = len(data)
        if spool.staged + size <= STAGE_BYTES and self.memory + size <= self.memory_limit:
            spool.stage.append(data)
            spool.staged += size
            self.memory += size
        else:  # one write for the gathered pieces and this one
            self.memory -= spool.write_stage(data)

    def hold(self, pieces: list[bytes], skip: int) -> None:
        """Queue ``pieces`` but their first ``skip`` bytes, by reference (an empty buffer)."""
        assert not self._items, "a held body goes first"
        for piece in pieces:
            if skip >= len(piece):
                skip -= len(piece)
                continue
            view = memoryview(piece)[skip:] if skip else piece
            skip = 0
            self._items.append(view)
            self.held += len(view)
            self.total += len(view)
        self.peak_total = max(self.peak_total, self.total)

    def add_file(self, fd: int, offset: int, count: int, done: Callable[[], object]) -> None:
        """Queue a file region; ``done`` (the file's close) runs once it is sent or dropped."""
        self._items.append(_FileRegion(fd, offset, count, done))
        self.total += count
        self.in_files += count
        self.peak_total = max(self.peak_total, self.total)

    # -- sending -----------------------------------------------------------------------------

    def send(self, sock: socket.socket) -> int:
        """Send what the kernel takes now, without waiting; returns the bytes sent.

        Raises:
            ClientDisconnected: the peer closed or reset.
        """
        items = self._items
        sent = 0
        try:
            while items:
                head = items[0]
                if type(head) is Spool:
                    count, more = self._send_spool(sock, head)
                elif type(head) is _FileRegion:
                    count, more = self._send_region(sock, head)
                else:
                    count, more = self._send_memory(sock)
                sent += count
                if not more:
                    break
        except BlockingIOError:
            pass
        except OSError as exc:
            raise ClientDisconnected(f"send failed: {exc}") from exc
        self.total -= sent
        return sent

    def _send_memory(self, sock: socket.socket) -> tuple[int, bool]:
        items = self._items
        pieces: list[_Piece] = []
        for item in islice(items, _SEND_PIECES):
            if not isinstance(item, bytes | memoryview):
                break
            pieces.append(item)
        sent = sock.sendmsg(pieces)
        left = sent
        for piece in pieces:
            if left < len(piece):
                if left:
                    items[0] = memoryview(piece)[left:]
                break
            left -= len(piece)
            items.popleft()
        from_held = min(sent, self.held)
        self.held -= from_held
        self.memory -= sent - from_held
        # A TLS send stops at TLS_SEND_BYTES: one that took that much may go on at once.
        return sent, sent in (sum(map(len, pieces)), TLS_SEND_BYTES)

    def _send_spool(self, sock: socket.socket, spool: Spool) -> tuple[int, bool]:
        if spool.read == spool.written:
            self.memory -= spool.write_stage()
        want = spool.written - spool.read
        sent = send_file(sock, spool.file.fileno(), spool.read, want)
        spool.read += sent
        if not len(spool):
            self._items.popleft()
            spool.file.close()
        return sent, sent in (want, TLS_SEND_BYTES)

    def _send_region(self, sock: socket.socket, region: _FileRegion) -> tuple[int, bool]:
        want = min(region.count, _SENDFILE_MAX)
        sent = send_file(sock, region.fd, region.offset, want)
        region.offset += sent
        region.count -= sent
        self.in_files -= sent
        if sent == 0:  # the file ended early: the response is short, the connection must close
            self.truncated = True
            self.total -= region.count
            self.in_files -= region.count
            region.count = 0
        if not region.count:
            self._items.popleft()
            _run_done(region)
        return sent, sent in (want, TLS_SEND_BYTES)

    # -- ending ------------------------------------------------------------------------------

    def discard(self) -> None:
        """Drop everything queued: close spool files, run the pending ``done`` callbacks."""
        unsent, report, self.on_discard = self.total, self.on_discard, None
        while self._items:
            item = self._items.popleft()
            if type(item) is Spool:
                item.file.close()
            elif type(item) is _FileRegion:
                _run_done(item)
        self.total = self.memory = self.held = self.in_files = 0
        if report is not None:
            try:
                report(unsent)
            except Exception:  # a logging failure must not cost the connection
                error_logger.exception("error reporting a finished response")


def _run_done(region: _FileRegion) -> None:
    try:
        region.done()
    except Exception:  # the application's close(): its error must not cost the connection
        error_logger.exception("error closing a file_wrapper response")


class OutputSink(Protocol):
    """Where a response's OutputBuffer goes once it exists: the connection (channel.py)."""

    out: OutputBuffer | None


def log_dropped(phase: str, peer: tuple[str, int], out: OutputBuffer, reason: str) -> None:
    """The one line for a reader dropped by the progress or rate rule (pace.py)."""
    error_logger.info(
        "slow reader %s dropped in phase %s (%s): %d bytes sent, %d still queued",
        peer[0] or "-",
        phase,
        reason,
        out.sent_direct + out.pace.sent,
        out.total,
    )
