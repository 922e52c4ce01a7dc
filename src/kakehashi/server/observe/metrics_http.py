"""The /metrics listener: a socket and a thread of its own, never the application's.

One thread multiplexes every scrape connection with a selector, so a client that connects
and says nothing delays no one: each connection has a deadline (``_DEADLINE`` from accept to
the last byte of the answer), there are at most ``_MAX_CONNECTIONS`` (the oldest is dropped
for a new one), and one request is answered per connection, which then closes.  The request
head is parsed by kakehashi.http1 with small limits; ``GET`` or ``HEAD /metrics`` gets the
exposition text, another path 404, another method 405, a malformed head its 4xx.

Also here: how a server and a pre-fork parent set their metrics up (:func:`server_metrics`,
:class:`ParentMetrics`), so the server modules only call in.

Owns: the listening socket, the selector, the connection table and the wake pipe, all
touched by the listener's thread only (``close`` writes the pipe, then joins the thread).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kakehashi.errors import ConfigError, RemoteProtocolError
from kakehashi.http1 import Limits, maybe_parse_request_head, reason_phrase
from kakehashi.server.net.bind import parse_bind
from kakehashi.server.net.sockio import reuse_address
from kakehashi.server.observe.exposition import CONTENT_TYPE, render
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.metrics import Recorder, WorkerSlots

__all__ = ["MetricsListener", "MetricsSettings", "ParentMetrics", "server_metrics"]


class MetricsSettings(Protocol):
    """The settings read here (ServerConfig has them): a protocol, so that this room stays
    below the config room, which imports the access log's format checker from it."""

    @property
    def metrics_bind(self) -> str: ...
    @property
    def threads(self) -> int: ...
    @property
    def workers(self) -> int: ...


_DEADLINE = 10.0  # seconds a scrape connection may take, from accept to its answer sent
_MAX_CONNECTIONS = 64
_LIMITS = Limits(max_request_line_bytes=4096, max_field_bytes=4096, max_header_bytes=8192,
                 max_fields=50, max_body_bytes=0)  # fmt: skip
_PATH = b"/metrics"


@dataclass(eq=False)
class _Scrape:
    sock: socket.socket
    deadline: float
    received: bytes = b""
    out: memoryview | None = None  # the answer, once there is one
    sent: int = field(default=0)


def _answer(status: int, body: bytes, head_only: bool = False, extra: str = "") -> bytes:
    content_type = CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"
    head = (
        f"HTTP/1.1 {status} {reason_phrase(status).decode('ascii')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
        "Connection: close\r\nServer: kakehashi\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body


def respond(received: bytes, source: Callable[[], bytes]) -> bytes | None:
    """The answer to the request head in ``received``; None while it is incomplete."""
    try:
        parsed = maybe_parse_request_head(received, 0, _LIMITS)
    except RemoteProtocolError as exc:
        return _answer(exc.status_hint, f"{exc}\n".encode())
    if parsed is None:
        return None
    request = parsed[0]
    if request.method not in (b"GET", b"HEAD"):
        return _answer(405, b"405 Method Not Allowed\n", extra="Allow: GET, HEAD\r\n")
    if request.target.split(b"?", 1)[0] != _PATH:
        return _answer(404, b"404 Not Found: metrics are at /metrics\n")
    try:
        body = source()
    except Exception:  # a bug of ours: say so, and keep the listener serving
        error_logger.exception("cannot render /metrics")
        return _answer(500, b"500 Internal Server Error\n")
    return _answer(200, body, head_only=request.method == b"HEAD")


class MetricsListener:
    """Serves ``GET /metrics`` at ``address`` (HOST:PORT) with what ``source`` returns;
    ``deadline``: seconds a connection may take from accept to its answer sent.

    Raises:
        ConfigError: from the constructor, when the address cannot be bound.
    """

    def __init__(
        self, address: str, source: Callable[[], bytes], deadline: float = _DEADLINE
    ) -> None:
        where = parse_bind(address)
        family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            reuse_address(self.sock)
            self.sock.bind((where.host, where.port))
            self.sock.listen(64)
        except OSError as exc:
            self.sock.close()
            raise ConfigError(
                f"cannot listen for metrics on {address}: {exc.strerror or exc}"
            ) from exc
        self.sock.setblocking(False)
        self.source = source
        self.deadline = deadline
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.sock, selectors.EVENT_READ)
        self._wake_r, self._wake_w = socket.socketpair()  # Windows selects sockets only
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._scrapes: dict[int, _Scrape] = {}
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kakehashi-metrics", daemon=True)
        self._thread.start()
        error_logger.info("kakehashi metrics at http://%s/metrics", self.address)

    def close(self) -> None:
        """Stop the thread and close every socket (from any other thread)."""
        if self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join(timeout=2.0)
            self._thread = None
        self.release()

    def release(self) -> None:
        """Close the sockets without the thread: in a forked child, whose copy has none."""
        for scrape in list(self._scrapes.values()):
            scrape.sock.close()
        self._scrapes.clear()
        self._selector.close()
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        while True:
            deadline = min((s.deadline for s in self._scrapes.values()), default=None)
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            for key, mask in self._selector.select(wait):
                if key.fileobj == self._wake_r:
                    return
                if key.fileobj is self.sock:
                    self._accept()
                elif (scrape := self._scrapes.get(key.fd)) is not None:  # not dropped meanwhile
                    self._serve(scrape, mask)
            now = time.monotonic()
            for scrape in [s for s in self._scrapes.values() if s.deadline <= now]:
                self._drop(scrape)

    def _accept(self) -> None:
        try:
            sock, _ = self.sock.accept()
        except OSError:  # gone already, or out of descriptors: the next event retries
            return
        if len(self._scrapes) >= _MAX_CONNECTIONS:
            self._drop(next(iter(self._scrapes.values())))  # the oldest
        sock.setblocking(False)
        scrape = _Scrape(sock, time.monotonic() + self.deadline)
        self._scrapes[sock.fileno()] = scrape
        self._selector.register(sock, selectors.EVENT_READ)

    def _serve(self, scrape: _Scrape, mask: int) -> None:
        try:
            if scrape.out is None:
                data = scrape.sock.recv(8192)
                if not data:
                    self._drop(scrape)
                    return
                scrape.received += data
                answer = respond(scrape.received, self.source)
                if answer is None:
                    return
                scrape.out = memoryview(answer)
                self._selector.modify(scrape.sock, selectors.EVENT_WRITE)
            scrape.sent += scrape.sock.send(scrape.out[scrape.sent :])
        except BlockingIOError:
            return
        except OSError:
            self._drop(scrape)
            return
        if scrape.sent == len(scrape.out):
            self._drop(scrape)

    def _drop(self, scrape: _Scrape) -> None:
        self._scrapes.pop(scrape.sock.fileno(), None)
        self._selector.unregister(scrape.sock)
        scrape.sock.close()


def server_metrics(
    config: MetricsSettings, given: Recorder | None
) -> tuple[Recorder | None, MetricsListener | None]:
    """A server's recorder, and the listener it serves it on (not started yet).

    ``given``: a pre-fork worker's recorder (its parent serves /metrics), else None.  With
    ``--metrics-bind`` off and nothing given: no recorder, and no cost per request.
    """
    if given is not None or not config.metrics_bind:
        return given, None
    recorder = Recorder.private(config.threads)
    return recorder, MetricsListener(config.metrics_bind, lambda: render(recorder.totals()))


class ParentMetrics:
    """The pre-fork parent's metrics: the workers' shared slots and the listener serving
    their sum.  Create it before forking (it binds: ConfigError if it cannot)."""

    def __init__(self, config: MetricsSettings) -> None:
        self.slots = WorkerSlots(config.workers, config.threads)
        self.listener = MetricsListener(config.metrics_bind, lambda: render(self.slots.totals()))

    @classmethod
    def create(cls, config: MetricsSettings) -> ParentMetrics | None:
        return cls(config) if config.metrics_bind else None

    def in_child(self, slot: int | None) -> Recorder:
        """In a freshly forked worker: drop the parent's listener, record into ``slot``."""
        self.listener.release()
        return self.slots.recorder(slot)
