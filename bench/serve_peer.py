"""Start one of the in-process peers: ``python -m bench.serve_peer NAME HOST:PORT``.

NAME is one of

* ``wsgiref``  -- ``wsgiref.simple_server``: single-threaded, one request per connection
  (HTTP/1.0 handling, no keep-alive), no access log;
* ``stdlib``   -- ``ThreadingHTTPServer`` + the adapter in ``bench/stdlib_wsgi.py``
  (thread per connection, keep-alive, TCP_NODELAY);
* ``cheroot``  -- ``cheroot.wsgi.Server`` with 4 threads (``numthreads=4``, same as
  waitress and kakehashi; cheroot's default is 10).

Every one listens with a backlog of 1024 (waitress' default; the stdlib and cheroot
default to 5) and serves ``bench.apps:app``.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
from collections.abc import Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from bench.apps import app

BACKLOG = 1024
CHEROOT_THREADS = 4


class _QuietWSGIRefHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""


class _WSGIRefServer(WSGIServer):
    request_queue_size = BACKLOG


def serve_wsgiref(host: str, port: int) -> None:
    server = _WSGIRefServer((host, port), _QuietWSGIRefHandler)
    server.set_app(app)
    server.serve_forever()


def serve_stdlib(host: str, port: int) -> None:
    from bench.stdlib_wsgi import make_server

    make_server(host, port, app).serve_forever()


def serve_cheroot(host: str, port: int) -> None:
    from cheroot import wsgi

    server = wsgi.Server((host, port), app, numthreads=CHEROOT_THREADS, request_queue_size=BACKLOG)
    server.safe_start()


SERVERS = {"wsgiref": serve_wsgiref, "stdlib": serve_stdlib, "cheroot": serve_cheroot}


def raise_nofile_limit() -> None:
    """Raise the soft open-files limit to the hard one (the flood needs ~11k fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_peer")
    parser.add_argument("name", choices=sorted(SERVERS))
    parser.add_argument("bind", help="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    raise_nofile_limit()
    with contextlib.suppress(KeyboardInterrupt):
        SERVERS[args.name](host.strip("[]"), int(port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
