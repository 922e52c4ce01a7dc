"""ServerConfig: every server setting, declared once.

No I/O here.  Each field carries its command-line flag, help text and section in its
``metadata``; the CLI builds its parser from these fields and ``docs/settings.md`` is
generated from them, so adding a setting touches this file only.  Values are checked in
``__post_init__`` and a bad one raises ConfigError before anything is bound.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.http1 import DEFAULT_LIMITS, Limits
from kakehashi.server.proxies import TrustedPeers, root_path_key

__all__ = ["Address", "ServerConfig", "parse_bind"]

_BIND_RE = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})")


def _opt(flag: str, help: str, section: str, **extra: Any) -> dict[str, Any]:
    return {"flag": flag, "help": help, "section": section, **extra}


@dataclass(frozen=True)
class Address:
    """Where to listen: a TCP (host, port) or a Unix socket path."""

    host: str = ""
    port: int = 0
    unix_path: str = ""

    def __str__(self) -> str:
        if self.unix_path:
            return f"unix:{self.unix_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> Address:
    """``HOST:PORT``, ``[::1]:PORT``, ``:PORT`` (all interfaces) or ``unix:/path``.

    Raises:
        ConfigError: anything else.
    """
    if text.startswith("unix:"):
        if len(text) == 5:
            raise ConfigError("unix: needs a path, as in unix:/run/app.sock")
        return Address(unix_path=text[5:])
    m = _BIND_RE.fullmatch(text)
    if m is None or int(m["port"]) > 65535:
        raise ConfigError(f"cannot bind to {text!r}: want HOST:PORT, [::1]:PORT or unix:/path")
    host = m["v6"] if m["v6"] is not None else (m["host"] or "0.0.0.0")
    return Address(host, int(m["port"]))


def _check_metrics_bind(text: str, app_addresses: list[Address]) -> None:
    """The metrics listener is TCP, and never one of the application's addresses."""
    where = parse_bind(text)
    if where.unix_path:
        raise ConfigError("--metrics-bind wants HOST:PORT, not a Unix socket")
    if where.port and where in app_addresses:
        raise ConfigError(f"--metrics-bind {text} is also a --bind address: use another port")


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings, with the reason for each default next to it."""

    bind: tuple[str, ...] = field(
        default=("127.0.0.1:8000",),
        metadata=_opt("--bind", "address to listen on, repeatable: HOST:PORT, [::1]:PORT, "
                      "unix:/path (default 127.0.0.1:8000)", "binding", short="-b"),
    )  # fmt: skip
    threads: int = field(
        # waitress's default: enough for an app that sometimes waits on a database, small
        # enough that the GIL is not fought over.
        default=4,
        metadata=_opt("--threads", "threads running the application", "workers"),
    )
    workers: int = field(
        default=1,
        metadata=_opt("--workers", "processes, each with its own threads (pre-fork)", "workers"),
    )
    backlog: int = field(
        # The kernel caps it at net.core.somaxconn; 2048 is gunicorn's default.
        default=2048,
        metadata=_opt("--backlog", "pending connections the kernel may queue", "binding"),
    )
    connection_limit: int = field(
        # Parked connections cost ~1 KiB each and no thread; the bound is on file descriptors.
        default=15000,
        metadata=_opt("--connection-limit", "open connections at most; more wait in the "
                      "kernel's backlog", "binding"),
    )  # fmt: skip
    keep_alive: float = field(
        # uvicorn's 5 s: long enough for a browser's next click, short enough to free slots.
        default=5.0,
        metadata=_opt("--keep-alive", "seconds an idle keep-alive connection is kept",
                      "timeouts"),
    )  # fmt: skip
    header_timeout: float = field(
        # Go's lesson: a zero default lets a silent client hold a connection forever.
        default=10.0,
        metadata=_opt("--header-timeout", "seconds a client has to send a complete request "
                      "head (a silent connection is closed, a partial head gets 408)",
                      "timeouts"),
    )  # fmt: skip
    body_timeout: float = field(
        default=30.0,
        metadata=_opt("--body-timeout", "seconds the body may go without a byte arriving",
                      "timeouts"),
    )  # fmt: skip
    send_timeout: float = field(
        default=30.0,
        metadata=_opt("--send-timeout", "seconds a slow reader may go without taking a byte "
                      "of the response", "timeouts"),
    )  # fmt: skip
    body_min_rate: int = field(
        # A body must arrive at least this fast on average (after its first body_timeout
        # seconds), so a client cannot hold a parked body open for hours at one byte per
        # interval.  1 KiB/s is far below any real uplink.
        default=1024,
        metadata=_opt("--body-min-rate", "bytes per second a request body must average once "
                      "it has taken --body-timeout seconds (0 = no minimum)", "timeouts",
                      off=True),
    )  # fmt: skip
    request_timeout: float = field(
        default=0.0,
        metadata=_opt("--request-timeout", "seconds after which a running request is logged "
                      "once at WARNING with its thread's stack (0 = off)", "timeouts",
                      off=True),
    )  # fmt: skip
    graceful_timeout: float = field(
        # gunicorn's default: requests in flight get this long to finish on shutdown.
        default=30.0,
        metadata=_opt("--graceful-timeout", "seconds requests in flight get to finish on "
                      "shutdown", "timeouts"),
    )  # fmt: skip
    shutdown_linger: float = field(
        # A client that sent its next request just as the server decided to stop is answered
        # (with Connection: close) instead of reset, if it arrives within this long.
        default=1.0,
        metadata=_opt("--shutdown-linger", "seconds an idle keep-alive connection is still "
                      "served on shutdown before it is closed (never past the graceful "
                      "timeout)", "timeouts", off=True),
    )  # fmt: skip
    limit_request_line: int = field(
        default=DEFAULT_LIMITS.max_request_line_bytes,
        metadata=_opt("--limit-request-line", "longest request line in bytes (414 beyond)",
                      "limits"),
    )  # fmt: skip
    limit_request_fields: int = field(
        default=DEFAULT_LIMITS.max_fields,
        metadata=_opt("--limit-request-fields", "most header fields (431 beyond)", "limits"),
    )
    limit_request_field_size: int = field(
        default=DEFAULT_LIMITS.max_field_bytes,
        metadata=_opt("--limit-request-field-size", "longest header field in bytes "
                      "(431 beyond)", "limits"),
    )  # fmt: skip
    limit_request_head: int = field(
        default=DEFAULT_LIMITS.max_header_bytes,
        metadata=_opt("--limit-request-head", "largest request head in bytes (431 beyond)",
                      "limits"),
    )  # fmt: skip
    max_body_size: int = field(
        default=DEFAULT_LIMITS.max_body_bytes,
        metadata=_opt("--max-body-size", "largest request body in bytes (413 beyond)",
                      "limits"),
    )  # fmt: skip
    buffer_body_size: int = field(
        # Bodies up to this size are read before the application runs, while the connection
        # holds no thread; a slow upload then cannot tie up the pool.  Larger bodies, chunked
        # ones and 100-continue requests are streamed to the application instead.
        default=1 << 20,
        metadata=_opt("--buffer-body-size", "bodies up to this many bytes are read in full "
                      "before the application runs", "limits"),
    )  # fmt: skip
    parked_body_budget: int = field(
        # What all bodies read before their application runs may hold in memory together;
        # over it, new bodies are streamed to the application instead, so many clients
        # announcing large bodies cannot make the server allocate for them.
        default=64 << 20,
        metadata=_opt("--parked-body-budget", "bytes all bodies read ahead of their "
                      "application may hold together", "limits"),
    )  # fmt: skip
    access_log: bool = field(
        default=True,
        metadata=_opt("--access-log", "log one line per request to the kakehashi.access "
                      "logger", "logging"),
    )  # fmt: skip
    expose_tracebacks: bool = field(
        default=False,
        metadata=_opt("--expose-tracebacks", "show the traceback of an application error "
                      "in the 500 response (development only)", "logging"),
    )  # fmt: skip
    url_scheme: str = field(
        default="http",
        metadata=_opt("--url-scheme", "wsgi.url_scheme (https behind a TLS proxy)", "binding"),
    )
    forwarded_allow_ips: str = field(
        # gunicorn's default and environment variable: a proxy on the same machine.
        default_factory=lambda: os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        metadata=_opt("--forwarded-allow-ips", "peers whose Forwarded and X-Forwarded-* "
                      "headers are believed: comma list of addresses, CIDR networks, 'unix' "
                      "(Unix-socket peers) or '*'; from anyone else these headers are removed "
                      "(docs/proxies.md)", "proxies",
                      default_text="127.0.0.1,::1 (or $FORWARDED_ALLOW_IPS)"),
    )  # fmt: skip
    root_path: str = field(
        # gunicorn reads SCRIPT_NAME from the environment; uvicorn calls the flag --root-path.
        default_factory=lambda: os.environ.get("SCRIPT_NAME", ""),
        metadata=_opt("--root-path", "URL prefix the application is mounted at: a path "
                      "under it is split into SCRIPT_NAME and PATH_INFO (docs/proxies.md)",
                      "proxies", default_text="'' (or $SCRIPT_NAME)"),
    )  # fmt: skip
    proxy_protocol: str = field(
        default="off",
        metadata=_opt("--proxy-protocol", "PROXY protocol header (HAProxy's send-proxy, "
                      "send-proxy-v2) required before the first request from peers in "
                      "--proxy-allow-from: off, v1, v2 or auto (docs/proxies.md)", "proxies"),
    )  # fmt: skip
    proxy_allow_from: str = field(
        default="127.0.0.1,::1",
        metadata=_opt("--proxy-allow-from", "peers that send a PROXY protocol header; same "
                      "syntax as --forwarded-allow-ips; a header from anyone else closes "
                      "the connection", "proxies"),
    )  # fmt: skip
    metrics_bind: str = field(
        default="",
        metadata=_opt("--metrics-bind", "serve Prometheus metrics at HOST:PORT/metrics, on a "
                      "listener of their own (docs/metrics.md)", "metrics", default_text="off"),
    )  # fmt: skip

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if value < 0 or (value == 0 and not f.metadata.get("off")):
                least = "0 or more" if f.metadata.get("off") else "positive"
                raise ConfigError(f"{f.metadata['flag']} must be {least}, not {value}")
        if not self.bind:
            raise ConfigError("nothing to bind to")
        for text in self.bind:
            parse_bind(text)
        if self.url_scheme not in ("http", "https"):
            raise ConfigError("--url-scheme must be http or https")
        TrustedPeers(self.forwarded_allow_ips)
        TrustedPeers(self.proxy_allow_from)
        if self.proxy_protocol not in ("off", "v1", "v2", "auto"):
            raise ConfigError("--proxy-protocol must be off, v1, v2 or auto")
        root_path_key(self.root_path)
        if self.metrics_bind:
            _check_metrics_bind(self.metrics_bind, self.addresses)

    @property
    def addresses(self) -> list[Address]:
        return [parse_bind(text) for text in self.bind]

    @property
    def limits(self) -> Limits:
        return Limits(
            max_request_line_bytes=self.limit_request_line,
            max_field_bytes=self.limit_request_field_size,
            max_header_bytes=max(self.limit_request_head, self.limit_request_line),
            max_fields=self.limit_request_fields,
            max_body_bytes=self.max_body_size,
        )

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)
