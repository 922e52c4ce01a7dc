"""WSGI applications the server tests serve, in-process or by ``kakehashi serve
tests.server_apps:NAME`` in a subprocess."""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World"]


def make_app() -> Callable[[Environ, StartResponse], list[bytes]]:
    """A factory, for ``module:factory()``."""
    return hello


not_callable = 42


def _text(start_response: StartResponse, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _slow(environ: Environ, start_response: StartResponse) -> list[bytes]:
    seconds = float(environ["QUERY_STRING"] or "1")
    time.sleep(seconds)
    return _text(start_response, b"slept %g" % seconds)


def _forever(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        yield b"tick\n"


def _big(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """64 MiB in 64 KiB pieces, for slow-reader tests."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    block = b"x" * 65536
    for _ in range(1024):
        yield block


def _echo(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = environ["wsgi.input"].read()
    return _text(start_response, body)


def _info(environ: Environ, start_response: StartResponse) -> list[bytes]:
    keys = {k: v for k, v in environ.items() if isinstance(v, str)}
    return _text(start_response, json.dumps(keys).encode())


def _pid(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return _text(start_response, b"%d" % os.getpid())


def _frozen(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """How many objects the process froze out of the garbage collector's sight (--gc-freeze)."""
    return _text(start_response, b"%d" % gc.get_freeze_count())


def _sigterm_here(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """SIGTERM to the process, delivered to this (a worker) thread, not the main one."""
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
    return _text(start_response, b"sent")


ROUTES = {
    "/frozen": _frozen,
    "/sigterm-here": _sigterm_here,
    "/pid": _pid,
    "/slow": _slow,
    "/forever": _forever,
    "/big": _big,
    "/echo": _echo,
    "/info": _info,
}


def app(environ: Environ, start_response: StartResponse) -> Any:
    """Dispatch on PATH_INFO; anything else is a hello."""
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        return _text(start_response, b"Hello, World")
    return handler(environ, start_response)


def broken_factory() -> Callable[[Environ, StartResponse], list[bytes]]:
    """A factory that fails, for ``module:broken_factory()``."""
    raise RuntimeError("the factory is broken on purpose")
