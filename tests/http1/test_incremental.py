"""A head fed to Connection one byte at a time costs work linear in its size.

Work is counted, never timed: the receive buffer's storage is swapped for a bytearray that
adds up the bytes each search (``find``, ``count``, ``startswith``) and each copy (slicing)
covers, by the range it is asked to cover.  That is every way the parser looks at the
buffer, apart from regular expressions run over one line.  Before issue 8, every byte re-ran
the parser over the whole head: 64 KiB byte by byte took 27 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, SupportsIndex

import pytest

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError
from kakehashi.http1 import _buffer

pytestmark = pytest.mark.timeout(120)

LIMITS = http1.Limits(max_header_bytes=1 << 18, max_fields=10_000)


class Budget(AssertionError):
    pass


class CountingBytes(bytearray):
    """A bytearray that counts the bytes its searches and slices cover."""

    covered = 0
    budget = 1 << 62

    def _cover(self, start: SupportsIndex | None, end: SupportsIndex | None) -> None:
        lo = 0 if start is None else int(start)
        hi = len(self) if end is None else min(int(end), len(self))
        CountingBytes.covered += max(0, hi - lo)
        if CountingBytes.covered > CountingBytes.budget:
            raise Budget(f"over budget: {CountingBytes.covered} bytes covered")

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self._cover(start, end)
        return super().find(sub, start, end)

    def count(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self._cover(start, end)
        return super().count(sub, start, end)

    def startswith(self, prefix: Any, start: Any = None, end: Any = None) -> bool:
        self._cover(start, end if end is not None else (start or 0) + len(prefix))
        return super().startswith(prefix, start, end)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            self._cover(key.start, key.stop)
        return super().__getitem__(key)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CountingBytes]]:
    # ReceiveBuffer makes its storage with the name ``bytearray``: shadow it in that module.
    monkeypatch.setattr(_buffer, "bytearray", CountingBytes, raising=False)
    CountingBytes.covered, CountingBytes.budget = 0, 1 << 62
    yield CountingBytes


def request_head(size: int) -> bytes:
    head = b"GET /linear HTTP/1.1\r\nHost: example.com\r\n"
    n = 0
    while len(head) < size - 40:
        head += b"X-Fill-%05d: %s\r\n" % (n, b"v" * 20)
        n += 1
    return head + b"\r\n"


def response_head(size: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + request_head(size).split(b"\r\n", 1)[1]


def feed(conn: http1.Connection, raw: bytes) -> object:
    """Feed ``raw`` one byte at a time; the head event must come with the last byte."""
    for i in range(len(raw)):
        conn.receive_data(raw[i : i + 1])
        event = conn.next_event()
        if event is not http1.NEED_DATA:
            assert i == len(raw) - 1, i
            return event
    raise AssertionError("no head")


def feed_server(raw: bytes) -> http1.Request:
    event = feed(http1.Connection(http1.Role.SERVER, LIMITS), raw)
    assert isinstance(event, http1.Request)
    return event


def feed_client(raw: bytes) -> http1.Response:
    conn = http1.Connection(http1.Role.CLIENT, LIMITS)
    conn.send(http1.Request(b"GET", b"/", http1.Headers([(b"Host", b"a")])))
    conn.send(http1.EndOfMessage())
    event = feed(conn, raw)
    assert isinstance(event, http1.Response)
    return event


def work(counter: type[CountingBytes], feed: Any, raw: bytes, budget: int = 1 << 62) -> int:
    counter.covered, counter.budget = 0, budget
    feed(raw)
    return counter.covered


def assert_linear(counter: type[CountingBytes], feed: Any, make: Any, size: int) -> None:
    """Work for a head of 4N bytes is at most 5 times that for N (4 if exactly linear)."""
    small = work(counter, feed, make(size // 4))
    large = work(counter, feed, make(size), budget=5 * small)  # stops a quadratic run early
    assert large <= 5 * small, (small, large)
    assert large < 40 * size, (small, large)  # a few passes per byte, not one per byte fed


def test_request_head_of_64_kib_byte_by_byte_is_linear(counted: type[CountingBytes]) -> None:
    assert feed_server(request_head(1 << 16)).target == b"/linear"  # and it parses
    assert_linear(counted, feed_server, request_head, 1 << 16)


def test_response_head_of_64_kib_byte_by_byte_is_linear(counted: type[CountingBytes]) -> None:
    assert feed_client(response_head(1 << 16)).status_code == 200
    assert_linear(counted, feed_client, response_head, 1 << 16)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\rY\r\n\r\n", 400),  # bare CR, after the line
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\nY: 2\r\n\r\n", 400),  # bare LF
        (b"\r\n\r\n\r\rGET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 40, 431),
    ],
)
def test_refused_at_the_same_byte_whatever_was_seen_before(raw: bytes, status: int) -> None:
    # The byte at which each head is refused, fed whole up to it or byte by byte.
    limits = http1.Limits(max_header_bytes=128)
    first = None
    for i in range(1, len(raw) + 1):
        try:
            http1.maybe_parse_request_head(raw[:i], 0, limits)
        except RemoteProtocolError as exc:
            first = (i, exc.status_hint)
            break
    assert first is not None and first[1] == status
    conn = http1.Connection(http1.Role.SERVER, limits)
    with pytest.raises(RemoteProtocolError) as info:
        for i in range(len(raw)):
            conn.receive_data(raw[i : i + 1])
            conn.next_event()
    assert (i + 1, info.value.status_hint) == first
