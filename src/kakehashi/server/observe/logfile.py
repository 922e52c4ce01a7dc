"""LogFileHandler: a logging handler whose lines cost a list append on the request path.

Request threads never write to the destination: they append a line (the access log hands
over its lines in batches: accesslog.py) to a bounded buffer, and one flusher thread per
handler writes what has gathered every ``flush_interval`` seconds (sooner once ``_FLUSH_AT``
characters wait), at ``flush()``, at ``close()`` and when the file is reopened.  A
destination that does not drain (a full pipe, a stopped reader) can therefore stall only the
flusher: once the buffer holds ``max_buffer_bytes`` the newest lines are dropped, counted in
``dropped``, and reported on the ``kakehashi.error`` logger when the destination takes data
again.

Writes to a pipe or terminal go out in pieces of at most PIPE_BUF bytes ending at a line end,
so the lines of several pre-fork workers sharing stderr never interleave mid-line; each piece
waits at most its timeout for the pipe to have room.  Regular files are opened with O_APPEND,
so every write lands whole at the end even with several writers.

``reopen_log_files()`` is the function to call on SIGUSR1 (logrotate): every live
LogFileHandler with a file name, and every ``logging.FileHandler`` of the process, finishes
writing what it holds to the old file and opens the path again.

A closed handler that is written to again opens its destination again and restarts its
flusher, as ``logging.FileHandler`` reopens its file: ``logging.config.dictConfig`` (Django
calls it at start) and ``logging.shutdown`` close every handler of the process, also those
that stay on a logger that keeps logging.  Since such a close also takes the handler out of
the list ``logging.shutdown`` flushes at exit, an exit hook of this module flushes every
live LogFileHandler.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import stat
import threading
import weakref
from typing import IO, Protocol

__all__ = ["LogFileHandler", "dropped_lines", "reopen_log_files"]

_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
_HAS_POLL = hasattr(select, "poll")
# Characters waiting that make the request thread that queued the last line write them
# out (or wake the flusher) before the flusher's interval.  Small batches keep the GIL
# free: at 64 KiB (a thousand lines made and written at once, about 1 ms) the requests
# behind them made p99 at keep-alive 10 6-9 ms with the access log on; at 8 KiB 1.3-2.1 ms.
_FLUSH_AT = 8 * 1024
# How long one flush may wait for a blocked destination: the periodic flush tries again at
# its next tick; flush() at shutdown gives up after this and counts what it could not write.
_FINAL_FLUSH_TIMEOUT = 5.0
_MAX_BUFFER_LIMIT = 64 << 20

_live: weakref.WeakSet[LogFileHandler] = weakref.WeakSet()


class _Source(Protocol):
    """Something that hands a handler lines in batches (accesslog.AccessLog)."""

    def drain(self) -> None: ...


def _writable(fd: int, timeout: float) -> bool:
    """Whether a pipe takes bytes within ``timeout``; where ``poll`` is missing (Windows,
    whose pipes cannot be selected) the write is simply tried."""
    if not _HAS_POLL:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))


class LogFileHandler(logging.Handler):
    """A file (by name) or an open stream, written in batches from a background thread.

    Args:
        filename: path to append to (created if missing); reopened by ``reopen()``.
        stream: an open text stream instead (``ext://sys.stdout`` in a dictConfig).
        buffered: False writes each record at once (an error log, where lines are rare).
        flush_interval: seconds between flushes of a buffered handler.
        max_buffer_bytes: characters that may wait; newer lines are dropped beyond it.

    Attributes:
        dropped: lines dropped so far because the destination did not keep up.

    Threads: ``_lines``/``_size``/``dropped`` are guarded by ``_lock`` (any thread appends);
    the destination (``_fd``, ``_carry``) by ``_write_lock``, held by whoever writes.
    """

    def __init__(
        self,
        filename: str | None = None,
        stream: IO[str] | None = None,
        *,
        buffered: bool = True,
        flush_interval: float = 0.5,
        max_buffer_bytes: int = 4 << 20,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        if (filename is None) == (stream is None):
            raise ValueError("LogFileHandler wants a filename or a stream, not both or neither")
        if not 0 < max_buffer_bytes <= _MAX_BUFFER_LIMIT or not 0 < flush_interval <= 60:
            raise ValueError("max_buffer_bytes or flush_interval out of range")
        self.filename = filename
        self.stream = stream
        self.buffered = buffered
        self.flush_interval = flush_interval
        self.max_buffer_bytes = max_buffer_bytes
        self.dropped = 0
        self._reported = 0
        self._lines: list[str] = []
        self._size = 0
        self._carry = b""  # encoded text a blocked destination has not taken yet
        self._lock = threading.Lock()
        # Re-entrant: a signal handler that logs may interrupt this very thread mid-write.
        self._write_lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False  # close() is under way: no flusher may start meanwhile
        self._closed = False  # closed; the next write opens the destination again
        # Bumped by close(): a flusher that outlived close()'s wait stops at its next tick.
        self._generation = 0
        # What hands this handler lines in batches (AccessLog): drained before each write.
        self._sources: weakref.WeakSet[_Source] = weakref.WeakSet()
        self._fd, self._owned, self._is_file = self._open()
        _live.add(self)

    # -- destination -------------------------------------------------------------------------

    def _open(self) -> tuple[int, bool, bool]:
        """(descriptor or -1 for a stream without one, owned by us, is a regular file)."""
        if self.filename is not None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.filename, flags, 0o644)
            return fd, True, True
        assert self.stream is not None
        try:
            fd = self.stream.fileno()
            self.stream.flush()
            return fd, False, stat.S_ISREG(os.fstat(fd).st_mode)
        except (AttributeError, OSError, ValueError):
            return -1, False, False  # a stream without a descriptor (a test's capture)

    def _open_again(self) -> bool:
        """After close(), before a write (with ``_write_lock`` held): open the destination
        again; False (the data waits) when the file cannot be opened."""
        if self.filename is not None:
            try:
                self._fd, self._owned, self._is_file = self._open()
            except OSError:
                return False
        self._closed = False
        _live.add(self)
        return True

    def _write_out(self, data: bytes, timeout: float) -> bytes:
        """Write ``data``; returns what the destination did not take within ``timeout``."""
        if self._closed and not self._open_again():
            return data
        if self._fd < 0:
            assert self.stream is not None
            self.stream.write(data.decode("utf-8", "replace"))
            self.stream.flush()
            return b""
        view = memoryview(data)
        while view:
            if self._is_file:
                piece = len(view)
            else:
                end = bytes(view[:_PIPE_BUF]).rfind(b"\n") + 1 if len(view) > _PIPE_BUF else 0
                piece = end or min(len(view), _PIPE_BUF)
                if not _writable(self._fd, timeout):
                    return bytes(view)
            try:
                view = view[os.write(self._fd, view[:piece]) :]
            except BlockingIOError:
                return bytes(view)
            except OSError:
                return b""  # the reader is gone (EPIPE): nothing will take these lines
        return b""

    # -- the request path --------------------------------------------------------------------

    def write_line(self, line: str) -> None:
        """Queue one line (without its newline); never blocks on the destination."""
        self.queue_lines([line])

    def queue_lines(self, lines: list[str]) -> None:
        """Queue made lines, in order, as :meth:`write_line` would one by one."""
        if not self.buffered:
            for line in lines:
                self._write_now(line)
            return
        with self._lock:
            waiting = self._size
            size = sum(map(len, lines)) + len(lines)
            if waiting + size <= self.max_buffer_bytes:
                self._lines.extend(lines)
                waiting += size
            else:  # the bound is reached within this batch: the rest are dropped
                for line in lines:
                    size = len(line) + 1
                    if waiting + size > self.max_buffer_bytes:
                        self.dropped += 1
                        continue
                    self._lines.append(line)
                    waiting += size
            self._size = waiting
        if self._thread is None:
            self._start_flusher()
        if waiting >= _FLUSH_AT:
            self._flush_inline()

    def add_source(self, source: _Source) -> None:
        """Have ``source.drain()`` called before every write (held weakly)."""
        self._sources.add(source)

    def _drain_sources(self) -> None:
        for source in list(self._sources):
            source.drain()

    def _flush_inline(self) -> None:
        """Write what waits from this (request) thread if nobody else is writing and the
        destination is a descriptor: writing about a hundred lines costs less than waking
        the flusher (a futex wake, context switches, the GIL handed over and back), and a
        descriptor is only written while it takes bytes at once, so a blocked destination
        never holds the request.  Otherwise the flusher is woken."""
        if self._fd >= 0 and self._write_lock.acquire(blocking=False):
            try:
                self._flush_pending(0.0)
            finally:
                self._write_lock.release()
        elif not self._wake.is_set():
            self._wake.set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:
            self.handleError(record)

    def _write_now(self, line: str) -> None:
        with self._write_lock:
            self._carry = self._write_out(
                self._carry + line.encode("utf-8", "backslashreplace") + b"\n",
                _FINAL_FLUSH_TIMEOUT,
            )

    # -- flushing ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher thread now (else the first line starts it).  Call it from the
        main thread: a thread started by a worker at the moment a SIGTERM arrives was seen
        to leave the signal unhandled, the main thread asleep in its wait."""
        if self.buffered and self._thread is None:
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._thread is not None or self._closing:
                return
            thread = threading.Thread(
                target=self._run, args=(self._generation,), name="logfile-flusher", daemon=True
            )
            self._thread = thread
        thread.start()

    def _run(self, generation: int) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            if generation != self._generation:
                return  # closed meanwhile (close() flushes what was queued)
            self._wake.clear()
            try:
                self._flush_pending(self.flush_interval)
            except Exception:  # a bug of ours: say so, and keep the log going
                logging.getLogger("kakehashi.error").exception("log flusher failed")

    def _flush_pending(self, timeout: float) -> None:
        if self._sources:
            self._drain_sources()
        with self._write_lock:
            old = data = self._carry
            with self._lock:
                lines, self._lines = self._lines, []
                self._size = len(old)  # lines queued from now on add to this
            if lines:
                lines.append("")
                data += "\n".join(lines).encode("utf-8", "backslashreplace")
            if data:
                self._carry = self._write_out(data, timeout)
            with self._lock:
                self._size += len(self._carry) - len(old)
                # Reported once the destination takes lines again; counted until then.
                dropped = 0 if self._carry else self.dropped - self._reported
                self._reported += dropped
        if dropped:
            logging.getLogger("kakehashi.error").warning(
                "log destination %s fell behind: %d line(s) dropped", self.destination, dropped
            )

    @property
    def destination(self) -> str:
        return self.filename or getattr(self.stream, "name", None) or repr(self.stream)

    def flush(self) -> None:
        """Write everything queued, waiting up to 5 s for a blocked destination."""
        if self._sources:
            self._drain_sources()
        if not self._lines and not self._carry:
            return
        self._flush_pending(_FINAL_FLUSH_TIMEOUT)
        if self._carry:  # still blocked: these lines are lost, and said so
            lost = self._carry.count(b"\n")
            with self._write_lock:
                self._carry = b""
            self.dropped += lost
            logging.getLogger("kakehashi.error").warning(
                "log destination %s blocked: %d line(s) lost", self.destination, lost
            )

    def reopen(self) -> None:
        """Finish writing to the current file and open its path again (after rotation)."""
        if self.filename is None or self._closed:
            return  # a closed handler opens the path again when it is next written to
        self._flush_pending(_FINAL_FLUSH_TIMEOUT)
        with self._write_lock:
            old = self._fd
            self._fd, self._owned, self._is_file = self._open()
            os.close(old)

    def close(self) -> None:
        """Write what is queued, stop the flusher and close an owned file.  Not final: a
        line written afterwards opens the destination again (see the module's docstring)."""
        with self._lock:
            self._closing = True
            self._generation += 1
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.flush_interval + _FINAL_FLUSH_TIMEOUT)
        self.flush()
        with self._write_lock:
            if self._owned and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._closed = True
        with self._lock:
            self._closing = False
        _live.discard(self)
        super().close()

    def _after_fork(self) -> None:
        # The child starts with the parent's queue (already the parent's to write) and locks
        # possibly held by a thread that does not exist here: start clean.
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._wake = threading.Event()
        self._lines, self._size, self._carry, self._thread = [], 0, b"", None
        self._sources = weakref.WeakSet()  # the parent's batches are the parent's to write


def _reset_after_fork() -> None:
    for handler in list(_live):
        handler._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _flush_at_exit() -> None:
    # logging.shutdown() at exit no longer knows a handler that dictConfig closed and that
    # was written to since: lines queued in it are written here.
    for handler in list(_live):
        with contextlib.suppress(Exception):
            handler.flush()


atexit.register(_flush_at_exit)


def dropped_lines() -> int:
    """Lines dropped so far by every LogFileHandler of this process (for metrics)."""
    return sum(handler.dropped for handler in list(_live))


def reopen_log_files() -> None:
    """Reopen every log file of this process at its path (call it on SIGUSR1, as nginx and
    gunicorn do, after logrotate moved the files away).  Lines queued are written to the
    old file first, so none is lost."""
    for handler in list(_live):
        handler.reopen()
    seen: set[int] = set()
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for other in getattr(logger, "handlers", ()):
            if isinstance(other, logging.FileHandler) and id(other) not in seen:
                seen.add(id(other))
                _reopen_file_handler(other)


def _reopen_file_handler(handler: logging.FileHandler) -> None:
    handler.acquire()
    try:
        if handler.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                handler.stream.flush()
                handler.stream.close()
        handler.stream = handler._open()
    finally:
        handler.release()
