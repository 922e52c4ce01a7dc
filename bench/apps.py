"""The one WSGI app every peer serves in the benchmarks: ``bench.apps:app``.

Routes by ``PATH_INFO``:

* ``/``        -- ``hello``: 200, ``Hello, World!`` with Content-Length;
* ``/big``     -- ``big``: 200, a 64 KiB body with Content-Length;
* ``/upload``  -- ``echo_post``: reads the whole request body (per CONTENT_LENGTH) and
  answers with its length in decimal;
* ``/stream``  -- ``stream``: 200, 20 MB streamed in 64 KiB pieces with no length given
  (for slow readers);
* anything else: 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BIG_SIZE", "HELLO_BODY", "STREAM_SIZE", "app", "big", "echo_post", "hello", "stream"]

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

HELLO_BODY = b"Hello, World!"
BIG_SIZE = 64 * 1024
_BIG_BODY = b"x" * BIG_SIZE
_READ_CHUNK = 64 * 1024
STREAM_SIZE = 20 * 1000 * 1000
_TEXT = ("Content-Type", "text/plain")


def _reply(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [_TEXT, ("Content-Length", str(len(body)))])
    return [body]


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """200 ``Hello, World!``."""
    return _reply(start_response, "200 OK", HELLO_BODY)


def big(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """200 with a 64 KiB body."""
    return _reply(start_response, "200 OK", _BIG_BODY)


def echo_post(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Read the whole body (CONTENT_LENGTH bytes) and answer with how many bytes arrived."""
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _reply(start_response, "400 Bad Request", b"bad Content-Length")
    stream = environ["wsgi.input"]
    total = 0
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK))
        if not chunk:
            break
        total += len(chunk)
        remaining -= len(chunk)
    return _reply(start_response, "200 OK", str(total).encode("ascii"))


def stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """200 with STREAM_SIZE bytes from a generator, no Content-Length (chunked on HTTP/1.1)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return _pieces()


def _pieces() -> Iterable[bytes]:
    block = b"s" * _READ_CHUNK
    sent = 0
    while sent < STREAM_SIZE:
        piece = block[: STREAM_SIZE - sent]
        sent += len(piece)
        yield piece


def _not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _reply(start_response, "404 Not Found", b"Not Found")


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/": hello,
    "/big": big,
    "/upload": echo_post,
    "/stream": stream,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch by path to ``hello``, ``big``, ``echo_post`` or ``stream``."""
    handler = ROUTES.get(environ.get("PATH_INFO", ""), _not_found)
    return handler(environ, start_response)
