"""The tutorial's routes as a plain WSGI function (replaced by the kakehashi.app demo)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/`` → Hello, World; ``/greeting/<name>`` → Hello, <name>!; anything else 404."""
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    name = path.removeprefix("/greeting/")
    if path == "/":
        status, body = "200 OK", "Hello, World"
    elif path.startswith("/greeting/") and name and "/" not in name:
        status, body = "200 OK", f"Hello, {name}!"
    else:
        status, body = "404 Not Found", "404 Not Found"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode("utf-8")]
