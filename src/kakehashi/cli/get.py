"""Send one HTTP request and print the response body (curl-like: -X, -H, -d, -i, -v, --fail).

What it does: builds a request from the options, sends it with :mod:`kakehashi.client`,
streams the body to stdout as bytes, and with ``-i`` prints the response head first; ``-v``
prints the request head, the response head and timings to stderr.

What it must not do: exit the process (it returns a code: 0 ok, 1 a connection error or, with
``--fail``, a 4xx/5xx status, 2 a usage error), or print anything but the body (and the head
with ``-i``) to stdout, so that ``kakehashi get URL > file`` saves exactly the body.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import BinaryIO

from kakehashi.client import Client, Response, Timeout
from kakehashi.errors import ClientError, ProtocolError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="an http:// or https:// URL")
    parser.add_argument(
        "-X", "--request", dest="method", help="the method (default GET, POST with -d)"
    )
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value'; repeatable"
    )
    parser.add_argument("-d", "--data", help="the request body; @FILE reads a file, @- stdin")
    parser.add_argument("-i", "--include", action="store_true", help="print the response head")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the request, the head and timings"
    )
    parser.add_argument("-f", "--fail", action="store_true", help="exit 1 on a 4xx or 5xx")
    parser.add_argument("-L", "--location", action="store_true", help="follow redirects")
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds for each phase (default 10)"
    )


def _body(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        with open(data[1:], "rb") as f:
            return f.read()
    return data.encode("utf-8")


def _headers(values: list[str]) -> list[tuple[str, str]]:
    fields = []
    for value in values:
        name, colon, rest = value.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"a header must look like 'Name: value', not {value!r}")
        fields.append((name.strip(), rest.strip()))
    return fields


def response_head(response: Response) -> bytes:
    """The response head as it came on the wire (status line, fields, empty line)."""
    lines = [f"HTTP/{response.http_version} {response.status} {response.reason}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _show(prefix: str, head: bytes) -> None:
    for line in head.decode("latin-1").split("\r\n")[:-1]:
        print(f"{prefix} {line}".rstrip(), file=sys.stderr)


def _timings(response: Response) -> str:
    t = response.timings
    parts = [f"{name} {t[name] * 1000:.1f} ms" for name in ("connect", "send", "wait", "total")]
    return "* " + ", ".join(p for p in parts if p.split()[0] in t)


def _write_body(response: Response, out: BinaryIO) -> None:
    for piece in response.iter_bytes():
        out.write(piece)
        out.flush()


def run(args: argparse.Namespace) -> int:
    try:
        body = _body(args.data)
        headers = _headers(args.header)
        timeout = Timeout.of(args.timeout)
    except (OSError, ValueError) as exc:
        print(f"kakehashi get: {exc}", file=sys.stderr)
        return 2
    method = args.method or ("POST" if body is not None else "GET")
    context = None
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    sys.stdout.flush()
    out = sys.stdout.buffer
    client = Client(timeout=timeout, follow_redirects=args.location, ssl_context=context)
    try:
        with client, client.stream(method, args.url, headers=headers, body=body) as response:
            if args.verbose:
                for hop in [*response.history, response]:
                    print(
                        f"* {hop.method} {hop.url} (connection #{hop.connection_id})",
                        file=sys.stderr,
                    )
                    _show(">", hop.request_head)
                    _show("<", response_head(hop))
            if args.include:
                out.write(response_head(response))
            _write_body(response, out)
            if args.verbose:
                print(_timings(response), file=sys.stderr)
    except ValueError as exc:
        print(f"kakehashi get: {exc}", file=sys.stderr)
        return 2
    except (ClientError, ProtocolError) as exc:
        print(f"kakehashi get: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 1 if args.fail and response.status >= 400 else 0
