"""Response decompression: ``Content-Encoding: gzip`` and ``deflate`` with :mod:`zlib`.

What it does: replaces a response's body iterator by one that yields the decoded bytes, piece
by piece, when every content coding named is one it knows (``gzip``, ``x-gzip``, ``deflate``,
``identity``); any other coding leaves the body as it came.

What it must not do: hold a whole body (each piece it yields is at most 64 KiB of output, so
a small "zip bomb" chunk does not become one huge allocation), or let a compressed body that
stops early pass as complete.

Invariants:
    * A body that is not valid for its coding, or that ends before the compressed stream does,
      raises :class:`~kakehashi.errors.RemoteProtocolError`; an empty body is just empty.
    * Headers are left as sent: ``Content-Encoding`` and ``Content-Length`` still describe
      the encoded body.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from kakehashi.client.models import Response
from kakehashi.errors import RemoteProtocolError

__all__ = ["ACCEPT_ENCODING", "decode_body", "decoded"]

ACCEPT_ENCODING = "gzip, deflate"
_OUT = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_body(response: Response) -> None:
    """Decode ``response``'s body as it is read, when its codings are all known ones."""
    value = response.headers.get("content-encoding") or ""
    codings = [c.strip().lower() for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings or any(c not in _WBITS for c in codings) or response._chunks is None:
        return
    chunks = response._chunks
    for coding in reversed(codings):  # the last coding applied is the first to undo
        chunks = decoded(chunks, coding)
    response._chunks = chunks


def decoded(chunks: Iterator[bytes], coding: str) -> Iterator[bytes]:
    """The bytes of ``chunks`` decoded from ``coding`` (``gzip``, ``x-gzip`` or ``deflate``).

    ``deflate`` is the zlib format (RFC 9110 §8.4.1.2), but some servers send raw deflate:
    when the first bytes are not a zlib header, they are read as raw deflate, as browsers do.

    Raises:
        RemoteProtocolError: the bytes are not valid for the coding, or end too soon.
    """
    decoder: zlib._Decompress | None = None
    seen = False
    for chunk in chunks:
        if not chunk:
            continue
        seen = True
        if decoder is None:
            decoder = zlib.decompressobj(_wbits(coding, chunk))
        yield from _inflate(decoder, chunk, coding)
    if seen and (decoder is None or not decoder.eof):
        raise RemoteProtocolError(f"the {coding} body ended before its compressed stream did")


def _wbits(coding: str, first: bytes) -> int:
    if coding == "deflate" and len(first) >= 2 and int.from_bytes(first[:2], "big") % 31:
        return -zlib.MAX_WBITS  # no zlib header (its first two bytes are a multiple of 31)
    return _WBITS[coding]


def _inflate(decoder: zlib._Decompress, data: bytes, coding: str) -> Iterator[bytes]:
    try:
        while True:
            if decoder.eof:
                if data:
                    raise RemoteProtocolError(f"bytes after the end of the {coding} stream")
                return
            out = decoder.decompress(data, _OUT)
            data = decoder.unconsumed_tail
            if out:
                yield out
            if decoder.unused_data:
                raise RemoteProtocolError(f"bytes after the end of the {coding} stream")
            if not data and len(out) < _OUT:  # a full buffer may leave output inside zlib
                return
    except zlib.error as exc:
        raise RemoteProtocolError(f"the body is not valid {coding}: {exc}") from exc
