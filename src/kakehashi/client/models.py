"""The client's data: URLs, timeouts, header fields, request bodies and the Response.

What it does: turns what the caller passes (a URL string, a float or :class:`Timeout`,
headers as a mapping or pairs, a body as bytes, text, a file or an iterator) into the exact
things the exchange needs, and holds a received response.

What it must not do: any I/O of its own (a Response reads only through the body iterator the
transport hands it), or any parsing of HTTP messages (that is ``kakehashi.http1``).

Invariants:
    * A :class:`Timeout` always has four finite, positive values: there is no "wait forever".
    * A :class:`URL` is always ``http`` or ``https`` with a host, and its target is ASCII.
    * A :class:`Response` body is delivered whole or not at all: a body that ends early raises
      from the iterator, it never just stops.
"""

from __future__ import annotations

import io
import json as jsonlib
import math
import os
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

__all__ = [
    "DEFAULT_TIMEOUT",
    "URL",
    "Body",
    "Headers",
    "HeadersInput",
    "PreparedBody",
    "Response",
    "Timeout",
    "file_length",
    "prepare_body",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_FILE_CHUNK = 64 * 1024
# Characters left as they are in a path or query; everything else non-ASCII is %-encoded.
_SAFE = "/:@!$&'()*+,;=-._~%?="

HeadersInput = Mapping[str, str] | Iterable[tuple[str, str]] | None
Body = bytes | bytearray | memoryview | str | BinaryIO | Iterable[bytes] | None


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds allowed for each phase; every one is finite.

    Args:
        connect: opening the TCP connection (and the TLS handshake).
        read: the longest silence while waiting for response bytes.
        write: sending the request.
        pool: waiting for a pooled connection.

    Raises:
        ValueError: a value is not a finite positive number.
    """

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not (0 < value < math.inf):
                raise ValueError(f"timeout {name} must be a finite number > 0, not {value!r}")

    @classmethod
    def of(cls, value: Timeout | float) -> Timeout:
        """A Timeout from a Timeout or one number for every phase.

        Raises:
            ValueError: the value is not a finite positive number (None is refused too).
        """
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"a timeout must be a number of seconds, not {value!r}")
        return cls(value, value, value, value)


DEFAULT_TIMEOUT = Timeout()


@dataclass(frozen=True, slots=True)
class URL:
    """An ``http`` or ``https`` URL, split into what a request needs."""

    scheme: str
    host: str  # an IPv6 address without brackets
    port: int
    target: str  # origin-form: path and query, ASCII

    @classmethod
    def parse(cls, url: str) -> URL:
        """Parse an absolute URL.

        Raises:
            ValueError: not http(s), no host, a bad port, or user info in the URL.
        """
        parts = urllib.parse.urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"only http:// and https:// URLs are supported, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        if parts.username is not None:
            raise ValueError("user info in a URL is not supported; send Authorization instead")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"bad port in {url!r}") from exc
        host = parts.hostname
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        path = urllib.parse.quote(parts.path or "/", safe=_SAFE)
        if not path.startswith("/"):
            path = "/" + path
        query = urllib.parse.quote(parts.query, safe=_SAFE)
        return cls(scheme, host, port, path + ("?" + query if query else ""))

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``: connections are pooled per origin."""
        return self.scheme, self.host, self.port

    @property
    def authority(self) -> str:
        """The Host header value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def join(self, location: str) -> URL:
        """Resolve a (possibly relative) ``Location`` against this URL.

        Raises:
            ValueError: the result is not a usable http(s) URL.
        """
        return URL.parse(urllib.parse.urljoin(str(self), location))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


class Headers:
    """Received header fields: ordered, repeats kept, case-insensitive lookup.

    Iterating gives ``(name, value)`` pairs in wire order, repeated fields included.

    Args:
        fields: ``(name, value)`` pairs of text (bytes are read as ISO-8859-1).
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str | bytes, str | bytes]] = ()) -> None:
        self._fields = [(_text(name), _text(value)) for name, value in fields]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field's value, repeated fields joined by ``", "``; ``default`` when absent."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of the field, one per field line, in order."""
        key = name.lower()
        return [value for fname, value in self._fields if fname.lower() == key]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def header_pairs(headers: HeadersInput) -> list[tuple[str, str]]:
    """Headers given as a mapping or as pairs, as a list of pairs."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


@dataclass(slots=True)
class PreparedBody:
    """A request body ready to send.

    ``length`` is None when unknown (the body goes chunked); ``replay`` is the whole body
    when it can be sent again (for a retry or a 307/308 redirect), else None.
    """

    chunks: Callable[[], Iterator[bytes]]
    length: int | None
    replay: bytes | None


def _empty() -> Iterator[bytes]:
    return iter(())


def prepare_body(body: Body) -> PreparedBody | None:
    """Decide how a body is sent: a length when it can be known, chunked otherwise.

    Returns:
        None for no body at all.

    Raises:
        TypeError: the body is of a type that cannot be sent.
    """
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        return PreparedBody(lambda: iter((data,) if data else ()), len(data), data)
    if hasattr(body, "read"):
        return _file_body(body)
    if isinstance(body, Iterable):
        return PreparedBody(lambda: _iter_bytes(body), None, None)
    raise TypeError(f"cannot send a body of type {type(body).__name__}")


def file_length(file: Any) -> int | None:
    """The bytes left in a regular file (its size is known and fixed), else None."""
    try:
        info = os.fstat(file.fileno())
        if stat.S_ISREG(info.st_mode):
            return int(info.st_size - file.tell())
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass  # a pipe, a socket, an in-memory file: no length known in advance
    return None


def _file_body(file: Any) -> PreparedBody:
    length = file_length(file)

    def chunks() -> Iterator[bytes]:
        while block := file.read(_FILE_CHUNK):
            if isinstance(block, str):
                block = block.encode("utf-8")
            yield block

    return PreparedBody(chunks, length, None)


def _iter_bytes(body: Iterable[Any]) -> Iterator[bytes]:
    for block in body:
        if isinstance(block, str):
            block = block.encode("utf-8")
        if not isinstance(block, bytes | bytearray | memoryview):
            raise TypeError(f"a body iterator must yield bytes, not {type(block).__name__}")
        if block:
            yield bytes(block)


@dataclass(eq=False)
class Response:
    """A response: its head at once, its body read whole or streamed.

    Attributes:
        status: the status code.
        reason: the reason phrase as sent.
        headers: the fields, case-insensitive, repeats kept.
        http_version: ``"1.1"`` or ``"1.0"``.
        url: the URL this response answers (the last one after redirects).
        method: the request method.
        history: the redirect responses that led here, oldest first.
        reused: whether the request went over a kept-alive connection.
        connection_id: a process-wide serial number of the connection it came over; equal
            numbers mean the same socket.
        request_head: the exact request head sent, bytes as on the wire.
        timings: seconds for ``connect`` (0.0 when reused), ``send``, ``wait`` (until the
            response head), and ``total`` once the body is read.
    """

    status: int
    reason: str
    headers: Headers
    http_version: str = "1.1"
    url: str = ""
    method: str = "GET"
    history: list[Response] = field(default_factory=list)
    reused: bool = False
    connection_id: int = 0
    request_head: bytes = b""
    timings: dict[str, float] = field(default_factory=dict)
    _chunks: Iterator[bytes] | None = field(default=None, repr=False)
    _on_close: Callable[[], None] | None = field(default=None, repr=False)
    _body: bytes | None = field(default=None, repr=False)

    def iter_bytes(self) -> Iterator[bytes]:
        """The body piece by piece, as it arrives; only once, and not after :meth:`read`.

        Raises:
            ReadError: the server closed before the body was complete.
            ReadTimeout: the server went silent in the middle of the body.
            RemoteProtocolError: the body's framing is malformed.
            RuntimeError: the body was already consumed.
        """
        if self._body is not None:
            yield self._body
            return
        if self._chunks is None:
            raise RuntimeError("the response body was already consumed")
        chunks, self._chunks = self._chunks, None
        try:
            yield from chunks
        finally:
            self.close()

    def read(self) -> bytes:
        """The whole body (read now if it was not yet).

        Raises:
            the errors of :meth:`iter_bytes`.
        """
        if self._body is None:
            self._body = b"".join(self.iter_bytes())
        return self._body

    @property
    def body(self) -> bytes:
        """The whole body; see :meth:`read`."""
        return self.read()

    @property
    def text(self) -> str:
        """The body decoded with the charset of Content-Type (UTF-8 when none is given)."""
        charset = "utf-8"
        for param in (self.headers.get("content-type") or "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.read().decode(charset, "replace")
        except LookupError:
            return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (UTF-8, -16 or -32, as RFC 8259 allows).

        Raises:
            ValueError: the body is not JSON (``json.JSONDecodeError`` is a ValueError).
        """
        return jsonlib.loads(self.read())

    @property
    def ok(self) -> bool:
        """True for 1xx-3xx (a status below 400)."""
        return self.status < 400

    def close(self) -> None:
        """Release the connection: back to the pool if the body was read to the end, else
        closed.  Safe to call more than once."""
        self._chunks = None
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
