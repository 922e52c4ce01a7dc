"""kakehashi.app: a small WSGI framework with routing, requests, responses and a test client.

    from kakehashi.app import App

    app = App()

    @app.get("/greeting/<name>")
    def greeting(req, name):
        return f"Hello, {name}!"

Also: hooks, groups mounted under a prefix, static files, uploads spooled to disk, config
(docs/framework.md).  The app runs under any WSGI server.  This package must import only the
standard library and the lower kakehashi layers (errors, http1, wsgi), never the server or
the client (``App.run`` imports the server when called; docs/design.md says why).

Invariant: everything a user needs is re-exported here; submodules are implementation detail.
"""

from kakehashi.errors import BadRequest, HTTPError, MethodNotAllowed, NotFound, RouteConflictError

from .app import App
from .config import Config
from .converters import (
    Converter,
    FloatConverter,
    IntegerConverter,
    PathConverter,
    StringConverter,
    UUIDConverter,
)
from .datastructures import FileStorage, Headers, MultiDict, ReadOnlyHeaders
from .group import Group
from .request import Request
from .response import Response, abort, redirect
from .routing import BuildError
from .static import send_file, send_from_directory
from .testing import Client, TestResponse

__all__ = [
    "App",
    "BadRequest",
    "BuildError",
    "Client",
    "Config",
    "Converter",
    "FileStorage",
    "FloatConverter",
    "Group",
    "HTTPError",
    "Headers",
    "IntegerConverter",
    "MethodNotAllowed",
    "MultiDict",
    "NotFound",
    "PathConverter",
    "ReadOnlyHeaders",
    "Request",
    "Response",
    "RouteConflictError",
    "StringConverter",
    "TestResponse",
    "UUIDConverter",
    "abort",
    "redirect",
    "send_file",
    "send_from_directory",
]
