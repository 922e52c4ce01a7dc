"""An in-memory Stream and connect function: the client's exchange with no sockets at all."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from kakehashi.client import Client, Pool, Timeout, Transport


class MemoryStream:
    """Replays scripted reads; records every write.

    Each item of ``replies`` is what one ``read`` returns (an exception is raised instead);
    once they run out, reads return ``b""`` (the server closed).
    """

    def __init__(
        self, replies: Iterable[bytes | Exception] = (), *, write_error: Exception | None = None
    ) -> None:
        self.replies = list(replies)
        self.written = bytearray()
        self.closed = False
        self.readable = False
        self.write_error = write_error

    def read(self, max_bytes: int, timeout: float) -> bytes:
        assert timeout > 0
        if not self.replies:
            return b""
        item = self.replies.pop(0)
        if isinstance(item, Exception):
            raise item
        if len(item) > max_bytes:
            self.replies.insert(0, item[max_bytes:])
            item = item[:max_bytes]
        return item

    def write(self, data: bytes, timeout: float) -> None:
        assert timeout > 0
        if self.write_error is not None:
            raise self.write_error
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_readable(self) -> bool:
        return self.readable


class MemoryBackend:
    """A connect function that hands out the given streams in order."""

    def __init__(self, *streams: MemoryStream) -> None:
        self.streams = list(streams)
        self.origins: list[tuple[str, str, int]] = []

    def __call__(
        self, origin: tuple[str, str, int], timeout: float, context: ssl.SSLContext | None
    ) -> MemoryStream:
        assert timeout > 0
        self.origins.append(origin)
        if not self.streams:
            raise AssertionError("the client opened more connections than the test expected")
        return self.streams.pop(0)


def memory_client(*streams: MemoryStream, pool: Pool | None = None, **kwargs: object) -> Client:
    """A Client whose connections are the given streams, in order."""
    transport = Transport(connect=MemoryBackend(*streams), pool=pool)
    timeout = kwargs.pop("timeout", Timeout(1, 1, 1, 1))
    return Client(transport=transport, timeout=timeout, **kwargs)  # type: ignore[arg-type]


def ok(body: bytes = b"hello", *extra: bytes) -> bytes:
    """A 200 response with a Content-Length body."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(e + b"\r\n" for e in extra) + b"\r\n" + body
