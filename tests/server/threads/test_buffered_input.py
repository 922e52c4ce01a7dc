"""BufferedInput: wsgi.input over a body read in full while the connection was parked."""

from __future__ import annotations

from kakehashi.server.threads.input import BufferedInput

BODY = b"first line\nsecond\n\nlast without newline"


def test_reads_match_io_bytesio() -> None:
    body = BufferedInput(bytearray(BODY))
    assert body.read(5) == b"first"
    assert body.readline() == b" line\n"
    assert body.readline(3) == b"sec"
    assert body.readline() == b"ond\n"
    assert list(body) == [b"\n", b"last without newline"]
    assert body.read() == b"" and body.readline() == b""
    body.close()


def test_readlines_hint_and_read_all() -> None:
    body = BufferedInput(bytearray(BODY))
    assert body.readlines(5) == [b"first line\n"]
    assert body.read(None) == BODY[len(b"first line\n") :]


def test_close_drops_the_body() -> None:
    body = BufferedInput(bytearray(BODY))
    body.close()
    assert body.read() == b""
