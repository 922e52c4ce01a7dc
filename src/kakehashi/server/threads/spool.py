"""Spool: bytes kept in a temporary file instead of memory.

Two things outgrow memory and go here: the part of a response a slow client has not taken
(outbuf.py, past ``--output-buffer-memory``), and a chunked request body past
``--buffer-body-size`` (parked_body.py), read while its connection is parked and then read
back by the application.  Small pieces are gathered in ``stage`` and written with one
``writev``, so a body of tiny chunks costs one system call per gathered 256 KiB, not one
per chunk.

The file is created with :func:`tempfile.TemporaryFile` (in ``TMPDIR``): on Linux it has no
name at all, elsewhere it is removed when closed, so nothing is left behind by a crash.
Owned by whichever thread owns the connection; not thread-safe.
"""

from __future__ import annotations

import io
import os
import tempfile

__all__ = ["STAGE_BYTES", "Spool", "write_all"]

STAGE_BYTES = 256 * 1024  # small pieces are gathered up to this before one write
_HAS_WRITEV = hasattr(os, "writev")


def write_all(fd: int, pieces: list[bytes | bytearray | memoryview]) -> None:
    """Write every piece to a (regular) file; a short write is finished piece by piece."""
    written = os.writev(fd, pieces) if _HAS_WRITEV else 0  # no writev on Windows
    for piece in pieces:
        if written >= len(piece):
            written -= len(piece)
            continue
        view = memoryview(piece)[written:]
        while view:
            view = view[os.write(fd, view) :]
        written = 0


class Spool:
    """A temporary file holding bytes from ``read`` to ``written``, plus ``stage`` (not
    written yet: ``staged`` bytes).

    Raises:
        OSError: the file cannot be created (:meth:`__init__`) or written (no room left).
    """

    __slots__ = ("file", "read", "stage", "staged", "written")

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (the owner closes it)
        self.read = 0
        self.written = 0
        self.stage: list[bytes | bytearray | memoryview] = []
        self.staged = 0

    def __len__(self) -> int:
        return self.written + self.staged - self.read

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (not copied while staged): written once ``STAGE_BYTES`` gathered."""
        self.stage.append(data)
        self.staged += len(data)
        if self.staged >= STAGE_BYTES:
            self.write_stage()

    def write_stage(self, extra: bytes | memoryview | None = None) -> int:
        """Write the gathered pieces (and ``extra``) to the file; returns the staged count."""
        pieces = [*self.stage, extra] if extra is not None else self.stage
        if pieces:
            write_all(self.file.fileno(), pieces)
        staged = self.staged
        self.written += staged + (len(extra) if extra is not None else 0)
        self.stage, self.staged = [], 0
        return staged

    def reader(self) -> io.BufferedReader:
        """Everything written, read from the start (write the stage first).  Closing the
        reader leaves the file open: :meth:`close` it after."""
        self.file.seek(0)
        return open(self.file.fileno(), "rb", closefd=False)

    def close(self) -> None:
        self.stage, self.staged = [], 0
        self.file.close()
