"""ServerConfig: every server setting, declared once.

No I/O here.  Each field carries its command-line flag, help text and section in its
``metadata``; the CLI builds its parser from these fields and ``docs/settings.md`` is
generated from them, so adding a setting touches this file only.  Values are checked in
``__post_init__`` and a bad one raises ConfigError before anything is bound.
"""

from __future__ import annotations

import dataclasses
import os
import select
import socket
from dataclasses import dataclass, field
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.http1 import DEFAULT_LIMITS, Limits
from kakehashi.server.config.fields import opt as _opt
from kakehashi.server.config.wssettings import WS_FIELDS as _WS
from kakehashi.server.edge.proxies import TrustedPeers, root_path_key
from kakehashi.server.net.bind import Address, parse_bind
from kakehashi.server.observe.accesslog import DEFAULT_FORMAT, check_format

__all__ = ["LOG_LEVELS", "Address", "ServerConfig", "default_text", "parse_bind"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED: what gunicorn's --cert-reqs and uvicorn's
# --ssl-cert-reqs take.
_CERT_REQS_NUMBERS = {"0": "none", "1": "optional", "2": "required"}


def default_text(f: dataclasses.Field[Any]) -> str:
    """How ``--help`` and docs/settings.md show a field's default: on/off for a switch,
    "none" for an empty value (never a bare ``''``)."""
    if "default_text" in f.metadata:
        return str(f.metadata["default_text"])
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    if isinstance(f.default, tuple):
        return ", ".join(f.default) or "none"
    return str(f.default) or "none"


def _check_number(f: dataclasses.Field[Any], value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    flag = f.metadata["flag"]
    if value != value or value < 0 or (value == 0 and not f.metadata.get("off")):  # NaN too
        least = "0 or more" if f.metadata.get("off") else "positive"
        raise ConfigError(f"{flag} must be {least}, not {value}")
    if value > f.metadata["most"]:
        raise ConfigError(f"{flag} must be at most {f.metadata['most']:,}, not {value:,}")


def _check_metrics_bind(text: str, app_addresses: list[Address]) -> None:
    """The metrics listener is TCP, and never one of the application's addresses."""
    where = parse_bind(text)
    if where.unix_path or where.fd >= 0:
        raise ConfigError("--metrics-bind wants HOST:PORT, not a Unix socket or a descriptor")
    if where.port and where in app_addresses:
        raise ConfigError(f"--metrics-bind {text} is also a --bind address: use another port")


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings, with the reason for each default next to it (for the
    WebSocket ones, in wssettings.py)."""

    bind: tuple[str, ...] = field(
        default=("127.0.0.1:8000",),
        metadata=_opt("--bind", "address to listen on, repeatable: HOST:PORT, [::1]:PORT, "
                      "unix:/path, fd://N; uvicorn's --host/--port, --uds PATH and --fd N are "
                      "accepted too (HOST defaults to 127.0.0.1, PORT to 8000)", "binding",
                      metavar="ADDRESS", aliases=("-b",)),
    )  # fmt: skip
    threads: int = field(
        # waitress's default: enough for an app that sometimes waits on a database, small
        # enough that the GIL is not fought over.
        default=4,
        metadata=_opt("--threads", "threads running the application", "workers", most=1024),
    )
    poller: str = field(
        # epoll is the fastest here (no hand-off between threads); the portable one runs on
        # every platform (kqueue, select) and can be chosen on Linux to test or measure it.
        default="auto",
        metadata=_opt("--poller", "how threads wait for sockets: auto (epoll where it "
                      "exists, else portable), epoll (Linux) or portable (selectors: kqueue, "
                      "select; one thread waits and hands connections to the others)",
                      "workers"),
    )  # fmt: skip
    workers: int = field(
        default=1,
        metadata=_opt(
            "--workers",
            "processes, each with its own threads (pre-fork)",
            "workers",
            most=256,
            aliases=("-w",),
        ),
    )
    backlog: int = field(
        # The kernel caps it at net.core.somaxconn; 2048 is gunicorn's default.
        default=2048,
        metadata=_opt(
            "--backlog", "pending connections the kernel may queue", "binding", most=65535
        ),
    )
    connection_limit: int = field(
        # Parked connections cost ~1 KiB each and no thread; the bound is on file descriptors.
        default=15000,
        metadata=_opt("--connection-limit", "open connections at most, per process; more "
                      "wait in the kernel's backlog (--limit-concurrency answers 503 "
                      "instead, for ASGI applications)", "binding", most=1_000_000,
                      aliases=("--worker-connections",)),
    )  # fmt: skip
    keep_alive: float = field(
        # uvicorn's 5 s: long enough for a browser's next click, short enough to free slots.
        default=5.0,
        metadata=_opt("--keep-alive", "seconds an idle keep-alive connection is kept",
                      "timeouts", most=3600, aliases=("--timeout-keep-alive",)),
    )  # fmt: skip
    header_timeout: float = field(
        # Go's lesson: a zero default lets a silent client hold a connection forever.
        default=10.0,
        metadata=_opt("--header-timeout", "seconds a client has to send a complete request "
                      "head (a silent connection is closed, a partial head gets 408)",
                      "timeouts", most=3600),
    )  # fmt: skip
    body_timeout: float = field(
        default=30.0,
        metadata=_opt("--body-timeout", "seconds the body may go without a byte arriving",
                      "timeouts", most=3600),
    )  # fmt: skip
    send_timeout: float = field(
        # A reader that stopped is dropped after this; one that trickles, by the rate rule.
        default=30.0,
        metadata=_opt("--send-timeout", "seconds a reader may go without taking a byte of "
                      "a response waiting for it", "timeouts", most=3600),
    )  # fmt: skip
    body_min_rate: int = field(
        # A body must arrive at least this fast on average (after its first body_timeout
        # seconds), so a client cannot hold a parked body open for hours at one byte per
        # interval.  1 KiB/s is far below any real uplink.
        default=1024,
        metadata=_opt("--body-min-rate", "bytes per second a request body must average once "
                      "it has taken --body-timeout seconds (0 = no minimum)", "timeouts",
                      off=True, most=1 << 30),
    )  # fmt: skip
    request_timeout: float = field(
        default=0.0,
        metadata=_opt("--request-timeout", "seconds after which a running request is logged "
                      "once at WARNING with its thread's stack (0 = off)", "timeouts",
                      off=True, most=86400),
    )  # fmt: skip
    graceful_timeout: float = field(
        # gunicorn's default: requests in flight get this long to finish on shutdown.
        default=30.0,
        metadata=_opt("--graceful-timeout", "seconds requests in flight get to finish on "
                      "shutdown", "timeouts", most=3600,
                      aliases=("--timeout-graceful-shutdown",)),
    )  # fmt: skip
    shutdown_linger: float = field(
        # A client that sent its next request just as the server decided to stop is answered
        # (with Connection: close) instead of reset, if it arrives within this long.
        default=1.0,
        metadata=_opt("--shutdown-linger", "seconds an idle keep-alive connection is still "
                      "served on shutdown before it is closed (never past the graceful "
                      "timeout)", "timeouts", off=True, most=3600),
    )  # fmt: skip
    limit_request_line: int = field(
        default=DEFAULT_LIMITS.max_request_line_bytes,
        metadata=_opt("--limit-request-line", "longest request line in bytes (414 beyond)",
                      "limits", most=1 << 20),
    )  # fmt: skip
    limit_request_fields: int = field(
        default=DEFAULT_LIMITS.max_fields,
        metadata=_opt(
            "--limit-request-fields", "most header fields (431 beyond)", "limits", most=10_000
        ),
    )
    limit_request_field_size: int = field(
        default=DEFAULT_LIMITS.max_field_bytes,
        metadata=_opt("--limit-request-field-size", "longest header field in bytes "
                      "(431 beyond)", "limits", most=1 << 20,
                      aliases=("--limit-request-field_size",)),
    )  # fmt: skip
    limit_request_head: int = field(
        default=DEFAULT_LIMITS.max_header_bytes,
        metadata=_opt("--limit-request-head", "largest request head in bytes (431 beyond)",
                      "limits", most=16 << 20),
    )  # fmt: skip
    max_body_size: int = field(
        default=DEFAULT_LIMITS.max_body_bytes,
        metadata=_opt("--max-body-size", "largest request body in bytes (413 beyond)",
                      "limits", most=1 << 40),
    )  # fmt: skip
    buffer_body_size: int = field(
        # Bodies up to this size are read into memory before the application runs, while
        # the connection holds no thread; a slow upload then cannot tie up the pool.  Larger
        # Content-Length bodies and 100-continue ones are streamed to the application (they
        # have a length).  A chunked body is always read whole: past this size it goes on
        # into a temporary file, since frameworks such as Django read only CONTENT_LENGTH.
        default=1 << 20,
        metadata=_opt("--buffer-body-size", "bodies up to this many bytes are read into "
                      "memory before the application runs; a chunked body past it is read "
                      "on into a temporary file", "limits", most=1 << 30),
    )  # fmt: skip
    parked_body_budget: int = field(
        # What all bodies read before their application runs may hold in memory together;
        # over it, Content-Length bodies are streamed to the application and chunked ones go
        # to a temporary file, so many clients announcing large bodies cannot make the
        # server allocate for them.
        default=64 << 20,
        metadata=_opt("--parked-body-budget", "bytes of memory all bodies read ahead of "
                      "their application may hold together", "limits", most=1 << 40),
    )  # fmt: skip
    send_min_rate: int = field(
        # Over a minute, a phone on a poor 2G link (~4 KB/s) passes with room; a client that
        # holds the connection by reading a few bytes a second does not.
        default=1024,
        metadata=_opt("--send-min-rate", "bytes a second a reader must take, averaged over "
                      "--send-rate-window, while a response waits for it", "timeouts",
                      most=1 << 30),
    )  # fmt: skip
    send_rate_window: float = field(
        # Longer than --send-timeout, so a stopped reader meets that rule first, and long
        # enough that a few seconds of TCP retransmission backoff averages out.
        default=60.0,
        metadata=_opt("--send-rate-window", "seconds over which --send-min-rate is averaged",
                      "timeouts", most=3600),
    )  # fmt: skip
    output_buffer_memory: int = field(
        # waitress spools beyond 1 MiB too: 1,000 slow readers then cost at most 1 GiB.
        default=1 << 20,
        metadata=_opt("--output-buffer-memory", "bytes of a response held in memory per "
                      "connection for a slow reader; beyond, spooled to a temporary file",
                      "limits", most=1 << 30),
    )  # fmt: skip
    output_buffer_limit: int = field(
        # Up to this the application runs to its end and frees its thread; beyond, it waits
        # (its thread held) for the client, so a disk is not filled by one endless stream.
        default=64 << 20,
        metadata=_opt("--output-buffer-limit", "bytes of a response held per connection "
                      "(memory and disk); beyond, the application waits for the client",
                      "limits", most=1 << 40),
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
                      "(docs/proxies.md); uvicorn's --proxy-headers is the default, its "
                      "--no-proxy-headers trusts nobody", "proxies",
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
    # -- TLS (server/edge/tls.py, docs/tls.md) -------------------------------------------------
    certfile: str = field(
        default="",
        metadata=_opt("--certfile", "PEM certificate chain: serve HTTPS on every --bind "
                      "address (docs/tls.md)", "tls", metavar="FILE", default_text="off",
                      aliases=("--ssl-certfile",)),
    )  # fmt: skip
    keyfile: str = field(
        default="",
        metadata=_opt("--keyfile", "PEM private key of --certfile", "tls", metavar="FILE",
                      default_text="in --certfile", aliases=("--ssl-keyfile",)),
    )  # fmt: skip
    keyfile_password: str = field(
        default="",
        metadata=_opt("--keyfile-password", "password of an encrypted --keyfile (visible in "
                      "ps: prefer $KAKEHASHI_KEYFILE_PASSWORD)", "tls", secret=True,
                      aliases=("--ssl-keyfile-password",)),
    )  # fmt: skip
    ca_certs: str = field(
        default="",
        metadata=_opt("--ca-certs", "PEM file of the CAs client certificates are checked "
                      "against (with --cert-reqs optional or required)", "tls", metavar="FILE",
                      aliases=("--ssl-ca-certs",)),
    )  # fmt: skip
    cert_reqs: str = field(
        default="none",
        metadata=_opt("--cert-reqs", "client certificates: none (not asked), optional "
                      "(checked if sent) or required; gunicorn's and uvicorn's 0, 1, 2 mean "
                      "the same", "tls", aliases=("--ssl-cert-reqs",)),
    )  # fmt: skip
    ciphers: str = field(
        default="",
        metadata=_opt("--ciphers", "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are "
                      "OpenSSL's)", "tls", default_text="OpenSSL's default",
                      aliases=("--ssl-ciphers",)),
    )  # fmt: skip
    ssl_min_version: str = field(
        default="TLSv1.2",
        metadata=_opt("--ssl-min-version", "oldest TLS version accepted: TLSv1.2 or TLSv1.3",
                      "tls"),
    )  # fmt: skip

    access_log_format: str = field(
        # gunicorn's atoms, so existing formats carry over; the default is the Combined Log
        # Format (what log analysers read) plus the duration in microseconds.
        default=DEFAULT_FORMAT,
        metadata=_opt("--access-log-format", "access line made of gunicorn's atoms "
                      "(%(h)s %(u)s %(t)s %(r)s %(s)s %(b)s %(f)s %(a)s %(D)s "
                      "%({header}i)s ...), or json for one JSON object a line", "logging",
                      metavar="FORMAT", aliases=("--access-logformat",)),
    )  # fmt: skip
    # Where the command line's log handlers write (cli/logsetup.py); the library itself
    # configures no logging, so a Server built in Python ignores these four.
    access_logfile: str = field(
        default="",
        metadata=_opt("--access-logfile", "write the access log to this file ('-' = stdout)",
                      "logging", metavar="PATH", default_text="stderr"),
    )  # fmt: skip
    error_logfile: str = field(
        default="",
        metadata=_opt("--error-logfile", "write kakehashi's own log to this file ('-' = "
                      "stderr)", "logging", metavar="PATH", default_text="stderr",
                      aliases=("--log-file",)),
    )  # fmt: skip
    log_level: str = field(
        default="info",
        metadata=_opt("--log-level", "level of the kakehashi loggers: debug, info, warning, "
                      "error or critical", "logging", metavar="LEVEL"),
    )  # fmt: skip
    log_config: str = field(
        default="",
        metadata=_opt("--log-config", "a logging.config.dictConfig in JSON or TOML (.toml) "
                      "replacing the default handlers (docs/logging.md)", "logging",
                      metavar="FILE"),
    )  # fmt: skip

    max_requests: int = field(
        # Off by default: recycling is a remedy for leaking applications, not a need.
        default=0,
        metadata=_opt("--max-requests", "a worker process that served this many requests is "
                      "replaced, without losing one (0 = never)", "workers", most=10**9,
                      off=True, aliases=("--limit-max-requests",)),
    )  # fmt: skip
    max_requests_jitter: int = field(
        # Spreads the recycling of workers started together, so they do not all go at once.
        default=0,
        metadata=_opt("--max-requests-jitter", "add a random 0..N to each worker's "
                      "--max-requests", "workers", most=10**9, off=True),
    )  # fmt: skip
    timeout: float = field(
        # gunicorn's default and meaning: a worker silent this long is stuck and replaced.
        default=30.0,
        metadata=_opt("--timeout", "seconds a worker process may go without a heartbeat "
                      "(all its threads stuck, its event loop blocked, or the GIL held) "
                      "before it is killed and "
                      "replaced (0 = off)", "workers", most=86400, off=True, aliases=("-t",)),
    )  # fmt: skip
    preload: bool = field(
        default=False,
        metadata=_opt("--preload", "import the application once in the parent before "
                      "forking (off: each worker imports it)", "workers"),
    )  # fmt: skip
    reuse_port: bool = field(
        default=False,
        metadata=_opt("--reuse-port", "set SO_REUSEPORT on the listening sockets", "binding"),
    )
    shutdown_delay: float = field(
        # Load balancers may send traffic for a while after SIGTERM; 0 drains at once.
        default=0.0,
        metadata=_opt("--shutdown-delay", "seconds to keep serving after SIGTERM, before "
                      "the drain starts", "timeouts", most=3600, off=True),
    )  # fmt: skip
    gc_freeze: bool = field(
        # Once serving, the application and its imports live as long as the process; the
        # cyclic collector's full passes walked all of them, a pause of 12-15 ms four times
        # a second under load (p99 at 100 connections 14 ms, 5 ms frozen: engine/heap.py).
        default=True,
        metadata=_opt("--gc-freeze", "ASGI applications: once ready to serve, gc.freeze() "
                      "what the process holds (the application, its imports, its startup), "
                      "so the garbage collector's full passes do not walk it at every "
                      "pause", "process"),
    )  # fmt: skip
    pid: str = field(
        default="",
        metadata=_opt("--pid", "write the process id to this file once listening; removed "
                      "on exit", "process", metavar="FILE", aliases=("-p",)),
    )  # fmt: skip
    chdir: str = field(
        default="",
        metadata=_opt("--chdir", "change to this directory before importing the application",
                      "process", metavar="DIR", default_text="the current directory"),
    )  # fmt: skip

    reload: bool = field(
        default=False,
        metadata=_opt("--reload", "development: replace the workers when a file of an imported "
                      "module changes (a worker that fails to import keeps the old one serving)",
                      "development"),
    )  # fmt: skip
    reload_extra_file: tuple[str, ...] = field(
        default=(),
        metadata=_opt("--reload-extra-file", "with --reload, also watch this file (repeatable)",
                      "development", metavar="FILE"),
    )  # fmt: skip

    metrics_bind: str = field(
        default="",
        metadata=_opt("--metrics-bind", "serve Prometheus metrics at HOST:PORT/metrics, on a "
                      "listener of their own (docs/metrics.md)", "metrics", default_text="off"),
    )  # fmt: skip

    # -- the ASGI engine (server/aio, docs/asgi.md) ------------------------------------------
    interface: str = field(
        default="auto",
        metadata=_opt("--interface", "what the application is: auto (ASGI 3 if it or its "
                      "__call__ is a coroutine function, else WSGI), wsgi, asgi (ASGI 3) or "
                      "asgi2 (a class taking the scope, awaited with receive and send)", "asgi"),
    )  # fmt: skip
    loop: str = field(
        # uvloop when installed: the same code runs on both; uvloop's C loop costs less a
        # request.  asyncio is the standard library only.
        default="auto",
        metadata=_opt("--loop", "event loop for an ASGI application: auto (uvloop if "
                      "installed, else asyncio), asyncio or uvloop", "asgi"),
    )  # fmt: skip
    loop_watchdog: float = field(
        # A stall this long is one no user misses; checking costs a thread waking every half
        # of it, and nothing on a busy loop (aio/watchdog.py has the figures).
        default=0.5,
        metadata=_opt("--loop-watchdog", "seconds the event loop may be blocked (a sync call "
                      "inside async def) before it is logged once with the loop's stack "
                      "(0 = off)", "asgi", off=True, most=3600),
    )  # fmt: skip
    limit_concurrency: int = field(
        # Off by default, as in uvicorn: a bound is a choice about the application's capacity.
        default=0,
        metadata=_opt("--limit-concurrency", "ASGI requests in flight at most; above, new "
                      "requests get 503 at once (0 = no limit)", "asgi", off=True,
                      most=1_000_000),
    )  # fmt: skip

    # -- WebSockets, on the ASGI engine (wssettings.py, docs/websocket.md) --------------------
    ws_max_size: int = _WS["ws_max_size"]
    ws_max_queue: int = _WS["ws_max_queue"]
    ws_ping_interval: float = _WS["ws_ping_interval"]
    ws_ping_timeout: float = _WS["ws_ping_timeout"]
    ws_close_timeout: float = _WS["ws_close_timeout"]
    ws_per_message_deflate: bool = _WS["ws_per_message_deflate"]
    ws_deflate_budget: int = _WS["ws_deflate_budget"]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_number(f, getattr(self, f.name))
        if not self.bind:
            raise ConfigError("nothing to bind to")
        for text in self.bind:
            parse_bind(text)
        if self.url_scheme not in ("http", "https"):
            raise ConfigError("--url-scheme must be http or https")
        TrustedPeers(self.forwarded_allow_ips)
        TrustedPeers(self.proxy_allow_from)
        self._check_platform()
        if self.interface not in ("auto", "wsgi", "asgi", "asgi3", "asgi2"):
            raise ConfigError("--interface must be auto, wsgi, asgi or asgi2")
        if self.loop not in ("auto", "asyncio", "uvloop"):
            raise ConfigError("--loop must be auto, asyncio or uvloop")
        if self.proxy_protocol not in ("off", "v1", "v2", "auto"):
            raise ConfigError("--proxy-protocol must be off, v1, v2 or auto")
        root_path_key(self.root_path)
        self._check_tls()
        if self.metrics_bind:
            _check_metrics_bind(self.metrics_bind, self.addresses)
        check_format(self.access_log_format)
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level must be {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}, "
                f"not {self.log_level!r}"
            )
        if self.output_buffer_memory > self.output_buffer_limit:
            raise ConfigError("--output-buffer-memory must not exceed --output-buffer-limit")
        if self.reload and self.preload:
            raise ConfigError(
                "--reload re-imports the application in new workers; not with --preload"
            )

    def _check_tls(self) -> None:
        """The TLS settings agree with each other (files are read when the server starts)."""
        if self.cert_reqs in _CERT_REQS_NUMBERS:  # gunicorn's and uvicorn's spelling
            object.__setattr__(self, "cert_reqs", _CERT_REQS_NUMBERS[self.cert_reqs])
        if self.cert_reqs not in ("none", "optional", "required"):
            raise ConfigError("--cert-reqs must be none, optional or required")
        if self.ssl_min_version not in ("TLSv1.2", "TLSv1.3"):
            raise ConfigError("--ssl-min-version must be TLSv1.2 or TLSv1.3")
        if not self.certfile:
            for flag, value in (("--keyfile", self.keyfile), ("--ca-certs", self.ca_certs),
                                ("--keyfile-password", self.keyfile_password),
                                ("--ciphers", self.ciphers)):  # fmt: skip
                if value:
                    raise ConfigError(f"{flag} needs --certfile")
            if self.cert_reqs != "none":
                raise ConfigError("--cert-reqs needs --certfile")
            return
        if self.cert_reqs != "none" and not self.ca_certs:
            raise ConfigError(f"--cert-reqs {self.cert_reqs} needs --ca-certs")
        if self.proxy_protocol != "off":
            raise ConfigError(
                "--proxy-protocol with --certfile is not supported: terminate TLS at the proxy"
            )

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS."""
        return bool(self.certfile)

    def _check_platform(self) -> None:
        """What this platform cannot do is refused in one line (README, "Platforms")."""
        if self.poller not in ("auto", "epoll", "portable"):
            raise ConfigError("--poller must be auto, epoll or portable")
        if self.poller == "epoll" and not hasattr(select, "epoll"):
            raise ConfigError("--poller epoll: this platform has no epoll (Linux only)")
        if not hasattr(os, "fork"):
            for flag, used in (
                ("--workers above 1", self.workers > 1),
                ("--max-requests", self.max_requests > 0),
                ("--reload", self.reload),
            ):
                if used:
                    raise ConfigError(
                        f"{flag} needs pre-fork worker processes (POSIX fork), which this "
                        "platform lacks: use one process and --threads"
                    )
        if not hasattr(socket, "AF_UNIX") and any(a.unix_path for a in self.addresses):
            raise ConfigError("unix: addresses need Unix sockets, which this platform lacks")
        if self.reuse_port and not hasattr(socket, "SO_REUSEPORT"):
            raise ConfigError("--reuse-port: this platform has no SO_REUSEPORT")

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
