"""Body readers on their own: Content-Length, chunked, close-delimited."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError


def buffer(data: bytes) -> http1.ReceiveBuffer:
    buf = http1.ReceiveBuffer()
    buf.append(data)
    return buf


def drain(reader: http1.BodyReader, buf: http1.ReceiveBuffer) -> list[object]:
    out: list[object] = []
    while (event := reader.read(buf)) is not None:
        out.append(event)
        if isinstance(event, http1.EndOfMessage):
            break
    return out


def test_reader_for_each_framing() -> None:
    limits = http1.DEFAULT_LIMITS
    assert isinstance(http1.reader_for(http1.Framing.CHUNKED, None, limits), http1.ChunkedReader)
    assert isinstance(http1.reader_for(http1.Framing.CLOSE, None, limits), http1.CloseReader)
    reader = http1.reader_for(http1.Framing.NONE, None, limits)
    assert isinstance(reader, http1.ContentLengthReader) and reader.remaining == 0


def test_content_length_reader_leaves_the_next_message() -> None:
    reader = http1.ContentLengthReader(3)
    buf = buffer(b"abcNEXT")
    assert drain(reader, buf) == [http1.Data(b"abc"), http1.EndOfMessage()]
    assert bytes(buf) == b"NEXT"
    assert reader.read_eof() == http1.EndOfMessage()


def test_content_length_reader_eof_short() -> None:
    reader = http1.ContentLengthReader(3)
    assert reader.read(buffer(b"")) is None
    with pytest.raises(RemoteProtocolError):
        reader.read_eof()


def test_close_reader() -> None:
    reader = http1.CloseReader()
    assert reader.read(buffer(b"")) is None
    assert reader.read(buffer(b"x")) == http1.Data(b"x")
    assert reader.read_eof() == http1.EndOfMessage()


def test_chunked_in_pieces_and_trailers() -> None:
    reader = http1.ChunkedReader(http1.DEFAULT_LIMITS)
    buf = http1.ReceiveBuffer()
    got: list[object] = []
    for byte in b"3\r\nabc\r\n0\r\nA: 1\r\nB:2\r\n\r\nNEXT":
        buf.append(bytes([byte]))
        got.extend(drain(reader, buf))
        if got and isinstance(got[-1], http1.EndOfMessage):
            break
    assert b"".join(e.data for e in got if isinstance(e, http1.Data)) == b"abc"
    end = got[-1]
    assert isinstance(end, http1.EndOfMessage)
    assert end.trailers.raw() == [(b"A", b"1"), (b"B", b"2")]
    assert bytes(buf) == b""
    with pytest.raises(RemoteProtocolError):
        reader.read_eof()


def test_trailer_section_bounded_by_the_head_limit() -> None:
    limits = http1.Limits(max_header_bytes=20)
    reader = http1.ChunkedReader(limits)
    with pytest.raises(RemoteProtocolError) as info:
        drain(reader, buffer(b"0\r\nA: 1234567890\r\nB: 1234567890\r\n\r\n"))
    assert info.value.status_hint == 431


def test_chunk_size_at_the_digit_bound() -> None:
    reader = http1.ChunkedReader(http1.Limits(max_body_bytes=1 << 62))
    assert drain(reader, buffer(b"00000fffffffffffffff\r\n")) == []
    with pytest.raises(RemoteProtocolError) as info:
        drain(http1.ChunkedReader(http1.DEFAULT_LIMITS), buffer(b"1" + b"0" * 15 + b"\r\n"))
    assert info.value.status_hint == 413
