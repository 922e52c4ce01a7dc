"""Spool: bytes kept in a temporary file, gathered into few writes, read back in order."""

from __future__ import annotations

import os

from kakehashi.server.threads.spool import STAGE_BYTES, Spool


def test_small_pieces_are_gathered_then_written_together_in_order() -> None:
    spool = Spool()
    pieces = [bytes([n % 256]) * 1000 for n in range(100)]
    for piece in pieces:
        spool.add(piece)
    assert spool.staged == 100_000 and spool.written == 0  # nothing written yet
    assert os.fstat(spool.file.fileno()).st_size == 0
    big = os.urandom(STAGE_BYTES)
    spool.add(bytearray(big))  # the stage passes STAGE_BYTES: one write for all of it
    assert spool.staged == 0 and spool.written == 100_000 + STAGE_BYTES
    spool.add(memoryview(b"tail"))
    assert spool.write_stage() == 4
    assert len(spool) == 100_004 + STAGE_BYTES
    assert os.fstat(spool.file.fileno()).st_size == len(spool)
    with spool.reader() as stream:
        assert stream.read() == b"".join(pieces) + big + b"tail"
    spool.close()
    assert spool.file.closed


def test_the_reader_starts_at_the_beginning_and_leaves_the_file_open() -> None:
    spool = Spool()
    body = b"line one\nline two\n" + os.urandom(300_000)
    spool.add(body)
    spool.write_stage()
    stream = spool.reader()
    assert stream.readline() == b"line one\n"
    assert stream.readlines(1) == [b"line two\n"]
    stream.close()
    with spool.reader() as again:  # from the start again, the file still open
        assert again.read() == body
    assert not spool.file.closed
    spool.close()
