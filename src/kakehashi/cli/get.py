"""Send one HTTP request and print the response body (curl-like: -X, -H, -d, -F, -o, -i, -v).

What it does: builds a request from the options, sends it with :mod:`kakehashi.client`,
streams the body to stdout (or to ``-o FILE``) as bytes, and with ``-i`` prints the response
head first; ``-v`` prints the request head, the response head and timings to stderr.  Like
curl: ``-d`` sends ``application/x-www-form-urlencoded`` (the data as given), ``--json``
sends ``application/json`` and asks for it, ``-F`` sends ``multipart/form-data``,
``-u user:pw`` Basic credentials, ``-x`` goes through a proxy (else ``http_proxy``,
``https_proxy`` and ``no_proxy`` decide), ``--compressed`` asks for gzip or deflate and
decodes it.  A download of over 1 MiB to a file shows a progress bar when stderr is a
terminal.

What it must not do: exit the process (it returns a code: 0 ok, 1 a connection error or, with
``--fail``, a 4xx/5xx status, 2 a usage error), or print anything but the body (and the head
with ``-i``) to stdout, so that ``kakehashi get URL > file`` saves exactly the body.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from kakehashi.client import BasicAuth, Client, Proxies, Response, Timeout
from kakehashi.errors import ClientError, ProtocolError

__all__ = ["Progress", "add_arguments", "run"]

PROGRESS_MIN = 1024 * 1024  # a bar only for downloads bigger than this
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("url", help="an http:// or https:// URL")
    add("-X", "--request", dest="method", help="the method (default GET, POST with a body)")
    add("-H", "--header", action="append", default=[], help="'Name: value'; repeatable")
    add(
        "-d",
        "--data",
        action="append",
        help=f"a body sent as {_FORM}; @FILE reads a file, @- stdin; repeats join with &",
    )
    add("--json", help=f"a body sent as {_JSON} (Accept too); @FILE, @- as for -d")
    add(
        "-F",
        "--form",
        action="append",
        help="multipart/form-data: name=value or name=@FILE[;type=MIME]; repeatable",
    )
    add("-u", "--user", help="USER:PASSWORD for Basic auth (asks for it without ':')")
    add("-o", "--output", metavar="FILE", help="write the body to FILE instead of stdout")
    add("-x", "--proxy", help="[http://][user:pw@]host:port; otherwise *_proxy variables")
    add("--compressed", action="store_true", help="ask for gzip or deflate and decode it")
    add("-i", "--include", action="store_true", help="print the response head")
    add("-v", "--verbose", action="store_true", help="show the request, the head and timings")
    add("-f", "--fail", action="store_true", help="exit 1 on a 4xx or 5xx")
    add("-L", "--location", action="store_true", help="follow redirects")
    add("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    add("--cacert", metavar="FILE", help="trust the CA certificates in this PEM file")
    add("--timeout", type=float, default=10.0, help="seconds for each phase (default 10)")


def _read_arg(data: str) -> bytes:
    """``@-`` reads stdin, ``@FILE`` a file, anything else is the text itself."""
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


@dataclass
class _Request:
    """What the options ask to send."""

    headers: list[tuple[str, str]]
    body: bytes | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, Any]] = field(default_factory=list)
    opened: list[BinaryIO] = field(default_factory=list)

    def default(self, name: str, value: str) -> None:
        """Add a field unless ``-H`` set it (an explicit header always wins, as in curl)."""
        if all(n.lower() != name.lower() for n, _ in self.headers):
            self.headers.append((name, value))

    @property
    def has_body(self) -> bool:
        return self.body is not None or bool(self.fields or self.files)


def _form_part(spec: str, request: _Request) -> None:
    """One ``-F``: ``name=value``, or ``name=@FILE`` with optional ``;type=`` and
    ``;filename=``."""
    name, eq, value = spec.partition("=")
    if not eq or not name:
        raise ValueError(f"-F must look like name=value or name=@file, not {spec!r}")
    if not value.startswith("@"):
        request.fields.append((name, value))
        return
    path, *params = value[1:].split(";")
    options = dict(p.partition("=")[::2] for p in params)
    f = open(path, "rb")  # noqa: SIM115 - closed by run() once the request is sent
    request.opened.append(f)
    filename = options.get("filename") or path.replace("\\", "/").rsplit("/", 1)[-1]
    request.files.append((name, (filename, f, options.get("type") or None)))


def _request(args: argparse.Namespace) -> _Request:
    """The request the options describe.

    Raises:
        ValueError: a malformed header or form part, or more than one kind of body.
        OSError: a file to send cannot be read.
    """
    request = _Request(_headers(args.header))
    kinds = [k for k in ("data", "json", "form") if getattr(args, k)]
    if len(kinds) > 1:
        raise ValueError(f"use only one of {', '.join('--' + k for k in kinds)}")
    if args.data:
        request.body = b"&".join(_read_arg(d) for d in args.data)
        request.default("Content-Type", _FORM)
    elif args.json is not None:
        request.body = _read_arg(args.json)
        request.default("Content-Type", _JSON)
        request.default("Accept", _JSON)
    for spec in args.form or ():
        _form_part(spec, request)
    return request


def _auth(user: str | None) -> BasicAuth | None:
    if user is None:
        return None
    name, colon, password = user.partition(":")
    if not colon:
        password = getpass.getpass(f"Enter host password for user '{name}': ")
    return BasicAuth(name, password)


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context for ``-k`` and ``--cacert``; None for the system default.

    Raises:
        OSError: the ``--cacert`` file cannot be read.
        ssl.SSLError: it holds no usable certificate.
    """
    if not args.insecure and args.cacert is None:
        return None
    context = ssl.create_default_context(cafile=args.cacert)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


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


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A one-line progress bar on a terminal, redrawn at most ten times a second.

    Args:
        out: where to draw (a terminal).
        total: the expected size, or None when unknown.
    """

    WIDTH = 30

    def __init__(self, out: TextIO, total: int | None) -> None:
        self.out = out
        self.total = total
        self.done = 0
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= 0.1 and self.done > PROGRESS_MIN:
            self.last = now
            self.draw(now)

    def draw(self, now: float) -> None:
        rate = self.done / max(now - self.start, 1e-6)
        text = f"{_size(self.done)}  {_size(rate)}/s"
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"[{bar}] {share * 100:5.1f}%  {_size(self.done)} of {_size(self.total)}"
            text += f"  {_size(rate)}/s"
        self.out.write("\r" + text + "\x1b[K")
        self.out.flush()
        self.shown = True

    def finish(self) -> None:
        if self.done > PROGRESS_MIN:
            self.draw(time.monotonic())
        if self.shown:
            self.out.write("\n")
            self.out.flush()


def _progress(args: argparse.Namespace, response: Response) -> Progress | None:
    """A bar for a download to a file on a terminal, unless it is known to be small."""
    if args.output is None or not sys.stderr.isatty():
        return None
    length = response.headers.get("content-length")
    encoded = "content-encoding" in response.headers and args.compressed
    total = int(length) if length and length.isdigit() and not encoded else None
    if total is not None and total <= PROGRESS_MIN:
        return None
    return Progress(sys.stderr, total)


def _write_body(response: Response, out: BinaryIO, progress: Progress | None) -> None:
    try:
        for piece in response.iter_bytes():
            out.write(piece)
            out.flush()
            if progress is not None:
                progress.update(len(piece))
    finally:
        if progress is not None:
            progress.finish()


def _verbose(response: Response) -> None:
    for hop in [*response.history, response]:
        print(f"* {hop.method} {hop.url} (connection #{hop.connection_id})", file=sys.stderr)
        _show(">", hop.request_head)
        _show("<", response_head(hop))


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[BinaryIO]:
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    with open(path, "wb") as f:
        yield f


def _exchange(client: Client, args: argparse.Namespace, request: _Request) -> Response:
    method = args.method or ("POST" if request.has_body else "GET")
    with client.stream(
        method,
        args.url,
        headers=request.headers,
        body=request.body,
        data=request.fields or None,
        files=request.files or None,
        auth=_auth(args.user),
    ) as response:
        if args.verbose:
            _verbose(response)
        with _output(args.output) as out:
            if args.include:
                out.write(response_head(response))
            _write_body(response, out, _progress(args, response))
        if args.verbose:
            print(_timings(response), file=sys.stderr)
    return response


def run(args: argparse.Namespace) -> int:
    try:
        request = _request(args)
        client = Client(
            timeout=Timeout.of(args.timeout),
            follow_redirects=args.location,
            ssl_context=_ssl_context(args),
            decompress=args.compressed,
            proxy=Proxies.of(args.proxy, trust_env=True),
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        print(f"kakehashi get: {exc}", file=sys.stderr)
        return 2
    try:
        with client:
            response = _exchange(client, args, request)
    except ValueError as exc:
        print(f"kakehashi get: {exc}", file=sys.stderr)
        return 2
    except (ClientError, ProtocolError) as exc:
        print(f"kakehashi get: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kakehashi get: cannot write the output: {exc}", file=sys.stderr)
        return 1
    finally:
        for f in request.opened:
            f.close()
    return 1 if args.fail and response.status >= 400 else 0
