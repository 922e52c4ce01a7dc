"""gzip and deflate response bodies: decoded by default, piece by piece, never cut short."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import pytest

from kakehashi.client import Client
from kakehashi.errors import RemoteProtocolError
from kakehashi.server import Server
from tests.client import flask_app
from tests.client.memory import MemoryStream, memory_client

pytestmark = pytest.mark.timeout(30)

BASE = "http://example.test"


@pytest.mark.integration
@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_flask_bodies_are_decoded(start_server: Callable[..., Server], coding: str) -> None:
    base = "http://" + start_server(flask_app.app).addresses[0]
    with Client(timeout=5) as c:
        r = c.get(base + f"/compressed/{coding}")
        assert b"Accept-Encoding: gzip, deflate\r\n" in r.request_head
        assert r.headers["content-encoding"] == coding
        assert int(r.headers["content-length"]) < len(flask_app.TEXT) // 10
        assert r.body == flask_app.TEXT
    with Client(timeout=5, decompress=False) as c:
        r = c.get(base + f"/compressed/{coding}")
        assert b"Accept-Encoding" not in r.request_head
        assert "content-encoding" not in r.headers and r.body == flask_app.TEXT


def _encoded(body: bytes, coding: str) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (coding.encode(), len(body)) + body


def _get(raw: bytes, **kwargs: object) -> bytes:
    with memory_client(MemoryStream([raw]), **kwargs) as c:
        return c.get(BASE + "/").body


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("GZIP", gzip.compress),
        ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
        ("identity, gzip", gzip.compress),
    ],
)
def test_codings(coding: str, encode: Callable[[bytes], bytes]) -> None:
    assert _get(_encoded(encode(b"hello " * 100), coding)) == b"hello " * 100


def test_an_unknown_coding_is_left_as_it_came() -> None:
    assert _get(_encoded(b"\x1b\x05\x00", "br")) == b"\x1b\x05\x00"
    assert _get(_encoded(gzip.compress(b"x"), "gzip, br")) == gzip.compress(b"x")


def test_decompress_false_leaves_the_body_alone() -> None:
    assert _get(_encoded(gzip.compress(b"x"), "gzip"), decompress=False) == gzip.compress(b"x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (gzip.compress(b"hello" * 1000)[:-10], "ended before"),
        (b"this is not gzip", "not valid gzip"),
        (gzip.compress(b"a") + b"trailing", "after the end"),
    ],
)
def test_a_broken_body_is_an_error_not_a_short_body(body: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        _get(_encoded(body, "gzip"))


def test_empty_bodies_and_no_body_statuses_decode_to_nothing() -> None:
    assert _get(_encoded(b"", "gzip")) == b""
    raw = b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\n\r\n"
    with memory_client(MemoryStream([raw])) as c:
        assert c.get(BASE + "/").status == 304


def test_a_small_bomb_is_yielded_in_bounded_pieces() -> None:
    big = b"\0" * (16 * 1024 * 1024)
    raw = _encoded(gzip.compress(big), "gzip")  # about 16 KiB on the wire
    with memory_client(MemoryStream([raw])) as c, c.stream("GET", BASE + "/") as r:
        sizes = [len(piece) for piece in r.iter_bytes()]
    assert sum(sizes) == len(big) and max(sizes) <= 64 * 1024
