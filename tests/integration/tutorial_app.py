"""The tutorial's routes as a WSGI app, for ``kakehashi serve tests.integration.tutorial_app:app``.

``/`` answers ``Hello, World``, ``/greeting/<name>`` answers ``Hello, <name>!``; anything
else is 404.  ``/stream`` answers from a generator with no Content-Length (the server must
frame it: chunked for HTTP/1.1), for the tests to add once the real server has landed.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _stream() -> Iterator[bytes]:
    for i in range(100):
        yield b"line %d\n" % i


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    if path == "/stream":
        start_response("200 OK", headers)
        return _stream()
    if path == "/":
        status, body = "200 OK", "Hello, World"
    elif path.startswith("/greeting/") and "/" not in path[10:] and path[10:]:
        status, body = "200 OK", f"Hello, {urllib.parse.unquote(path[10:])}!"
    else:
        status, body = "404 Not Found", "Not Found"
    start_response(status, headers)
    return [body.encode("utf-8")]
