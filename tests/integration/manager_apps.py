"""Applications for the process-manager tests, served by `kakehashi serve` subprocesses."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

IMPORTED_BY = os.getpid()  # which process imported this module (the parent with --preload)


def _text(start_response: StartResponse, body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/pid``: the worker's pid; ``/imported``: who imported the app; ``/block``: sleeps
    (a thread held for ``?seconds``); ``/spin``: holds the GIL for ever; ``/stream``: a chunk
    every 0.1 s for ``?seconds``; anything else: hello."""
    path = environ["PATH_INFO"]
    if path == "/pid":
        return _text(start_response, b"%d" % os.getpid())
    if path == "/imported":
        return _text(start_response, b"%d %d" % (IMPORTED_BY, os.getpid()))
    if path == "/block":
        time.sleep(float(environ["QUERY_STRING"] or "30"))
    if path == "/stream":
        return _stream(float(environ["QUERY_STRING"] or "3"), start_response)
    if path == "/spin":  # catastrophic backtracking: one C call that never lets go of the GIL
        re.match(r"(a+)+b", "a" * 64)
    return _text(start_response, b"hello")


def _stream(seconds: float, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        yield b"tick\n"


def fragile() -> Callable[[Environ, StartResponse], list[bytes]]:
    """A factory that fails once the file named by ``$MANAGER_APPS_BREAK`` exists: workers
    booted before it serve, later ones crash at boot."""
    if Path(os.environ["MANAGER_APPS_BREAK"]).exists():
        raise RuntimeError("the database is down (on purpose)")
    return app
