"""Serve a WSGI application (interim: the tutorial's routes on wsgiref until the server lands)."""

from __future__ import annotations

import argparse
import contextlib
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

__all__ = ["add_arguments", "run"]


def tutorial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The tutorial's routes as a plain WSGI function."""
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    if path == "/":
        status, body = "200 OK", "Hello, World"
    elif path.startswith("/greeting/") and "/" not in path[10:] and path[10:]:
        status, body = "200 OK", f"Hello, {urllib.parse.unquote(path[10:])}!"
    else:
        status, body = "404 Not Found", "Not Found"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode("utf-8")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-b", "--bind", default="127.0.0.1:8000")


def run(args: argparse.Namespace) -> int:
    host, _, port = args.bind.rpartition(":")
    with make_server(host, int(port), tutorial_app) as server:
        print(f"kakehashi: serving the demo on http://{args.bind}/")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0
