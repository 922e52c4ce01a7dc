"""--metrics-bind over real sockets: what a scrape shows after real requests (on both
engines: the same names and meanings), the listener's own rules, promtool's verdict, and the
pre-fork bar (1,000 requests through two worker processes, totals exact, and not lowered when
a worker is killed and replaced)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kakehashi.errors import ConfigError
from kakehashi.server.observe.metrics_http import MetricsListener
from tests import asgi_apps, server_apps
from tests.conftest import ServeProcess, StartServer
from tests.wire import Reader, connect, exchange, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(address: str) -> Samples:
    response = get(address, "/metrics")
    assert response.status == 200
    assert response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    out = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def get_2xx(samples: Samples) -> float:
    return one(samples, "kakehashi_requests_total", method="GET", status="2xx")


def requests_total(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "kakehashi_requests_total")


def _half(start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"half"
    raise RuntimeError("cut short, on purpose")


def faulty(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    if environ["PATH_INFO"] == "/half":
        return _half(start_response)
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom, on purpose")
    if environ["PATH_INFO"] == "/missing":
        start_response("404 Not Found", [("Content-Length", "7")])
        return [b"missing"]
    return server_apps.app(environ, start_response)


async def faulty_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI twin of :func:`faulty`."""
    path = scope["path"]
    if path == "/half":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise RuntimeError("cut short, on purpose")
    if path == "/boom":
        raise RuntimeError("boom, on purpose")
    if path == "/missing":
        await asgi_apps.text(send, b"missing", 404)
        return
    await asgi_apps.app(scope, receive, send)


def metrics_address(server: Any) -> str:
    listener = server._metrics_http
    assert listener is not None
    return listener.address


_TIMEOUTS = {"header_timeout": 0.4, "keep_alive": 0.4, "body_timeout": 0.4}


@pytest.fixture
def metered(start_server: StartServer) -> tuple[str, str]:
    """(app address, metrics address) of a server with --metrics-bind on port 0."""
    server = start_server(faulty, metrics_bind="127.0.0.1:0", **_TIMEOUTS)
    return server.addresses[0], metrics_address(server)


@pytest.fixture
def metered_any(start_engine: Callable[..., Any]) -> tuple[str, str]:
    """:func:`metered` on each engine (the ``engine`` fixture's)."""
    server = start_engine(faulty, faulty_asgi, metrics_bind="127.0.0.1:0", **_TIMEOUTS)
    return server.addresses[0], metrics_address(server)


# -- what is counted -----------------------------------------------------------------------


def test_requests_by_method_and_status_class_with_bytes_and_durations(
    metered_any: tuple[str, str],
) -> None:
    where, metrics = metered_any
    for _ in range(5):
        assert get(where, "/").body == b"Hello, World"
    for _ in range(2):
        post = b"POST /missing HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
        answer = exchange(where, post)
        assert answer[0].status == 404
    assert get(where, "/boom").status == 500
    assert exchange(where, b"BREW / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")[0].status
    # A response is counted just after its last byte is sent: wait for the last one.
    assert wait_until(lambda: requests_total(scrape(metrics)) == 9, 5)
    got = scrape(metrics)
    assert one(got, "kakehashi_requests_total", method="GET", status="2xx") == 5
    assert one(got, "kakehashi_requests_total", method="POST", status="4xx") == 2
    assert one(got, "kakehashi_requests_total", method="GET", status="5xx") == 1
    assert one(got, "kakehashi_requests_total", method="OTHER", status="2xx") == 1
    assert one(got, "kakehashi_application_errors_total") == 1
    assert one(got, "kakehashi_response_body_bytes_total") == 6 * 12 + 2 * 7
    assert one(got, "kakehashi_request_duration_seconds_count") == 9
    assert one(got, "kakehashi_request_duration_seconds_bucket", le="+Inf") == 9
    assert 0 < one(got, "kakehashi_request_duration_seconds_sum") < 9 * 5.0
    # Scrapes are not requests of the application.
    assert requests_total(scrape(metrics)) == 9


def test_connection_gauges(metered_any: tuple[str, str]) -> None:
    where, metrics = metered_any
    with connect(where) as idle, connect(where) as busy:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        Reader(idle).read_response()  # now an idle keep-alive connection
        busy.sendall(b"GET /slow?2.5 HTTP/1.1\r\nHost: t\r\n\r\n")

        # One scrape must show all three at once. Waiting for in-flight == 1 alone can
        # be met by the idle connection's worker before it lets go (the client reads the
        # response before the thread releases the connection), with `busy` not yet
        # accepted: CI's portable-poller pass caught that.
        def gauges() -> tuple[float, ...]:
            got = scrape(metrics)
            names = ("open", "in_flight", "parked")
            return tuple(one(got, f"kakehashi_connections_{name}") for name in names)

        assert wait_until(lambda: gauges() == (2, 1, 1), 2.0), gauges()
        Reader(busy).read_response()
    assert wait_until(lambda: one(scrape(metrics), "kakehashi_connections_open") == 0, 5)
    got = scrape(metrics)
    assert one(got, "kakehashi_connections_accepted_total") == 2
    assert one(got, "kakehashi_connections_in_flight") == 0


def test_timeouts_by_phase_and_protocol_errors_by_status(metered_any: tuple[str, str]) -> None:
    where, metrics = metered_any
    with connect(where) as silent, connect(where) as partial, connect(where) as kept:
        partial.sendall(b"GET / HTTP/1.1\r\nHost:")
        kept.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        Reader(kept).read_response()
        # Each is closed on its deadline (0.4 s here); a partial head gets a 408 first.
        assert Reader(partial).read_response().status == 408
        assert silent.recv(100) == b""
        assert kept.recv(100) == b""
    assert exchange(where, b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")[0].status == 400
    long_line = b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    assert exchange(where, long_line)[0].status == 414
    got = scrape(metrics)
    assert one(got, "kakehashi_timeouts_total", phase="silent") == 1
    assert one(got, "kakehashi_timeouts_total", phase="head") == 1
    assert one(got, "kakehashi_timeouts_total", phase="keep_alive") == 1
    assert one(got, "kakehashi_timeouts_total", phase="body") == 0
    assert one(got, "kakehashi_protocol_errors_total", status="400") == 1
    assert one(got, "kakehashi_protocol_errors_total", status="414") == 1


def test_a_slow_body_and_a_broken_streamed_body(metered: tuple[str, str]) -> None:
    where, metrics = metered
    with connect(where) as slow:  # a small body, read ahead of the application, stalls
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        assert Reader(slow).read_response().status == 408
    # A streamed body (100-continue) that ends early while the application reads: the client
    # half-closes after 2 of its 10 bytes.
    with connect(where) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.read_response().status == 100
        sock.sendall(b"ab")
        sock.shutdown(socket.SHUT_WR)
        assert reader.read_response().status == 400
    assert wait_until(
        lambda: one(scrape(metrics), "kakehashi_protocol_errors_total", status="400") == 1, 5
    )
    got = scrape(metrics)
    assert one(got, "kakehashi_timeouts_total", phase="body") == 1
    assert one(got, "kakehashi_requests_total", method="POST", status="4xx") == 0


def test_a_stalled_body_is_a_body_timeout(metered_any: tuple[str, str]) -> None:
    where, metrics = metered_any
    with connect(where) as slow:
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        assert Reader(slow).read_response().status == 408
    assert wait_until(lambda: one(scrape(metrics), "kakehashi_timeouts_total", phase="body"), 5)
    got = scrape(metrics)
    assert one(got, "kakehashi_timeouts_total", phase="body") == 1
    assert requests_total(got) == 0  # refused, not answered by the application


def test_a_response_cut_short_counts_with_the_status_it_had_sent(
    metered_any: tuple[str, str],
) -> None:
    where, metrics = metered_any
    with connect(where) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the server aborts the connection
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK") and b"half" in received

    def counted() -> tuple[float, float]:  # both from one scrape: neither is counted first
        got = scrape(metrics)
        return one(got, "kakehashi_application_errors_total"), get_2xx(got)

    assert wait_until(lambda: counted() == (1, 1), 5), counted()


# -- the listener ----------------------------------------------------------------------------


def test_the_listener_answers_only_metrics(metered: tuple[str, str]) -> None:
    where, metrics = metered
    assert get(metrics, "/").status == 404
    assert get(metrics, "/metrics/extra").status == 404
    assert get(metrics, "/metrics?name[]=x").status == 200  # a query is ignored
    post = exchange(metrics, b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    assert post[0].status == 405 and post[0].header("Allow") == "GET, HEAD"
    head = exchange(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n", head_request=True)[0]
    assert head.status == 200 and head.body == b"" and int(head.header("Content-Length") or 0)
    assert exchange(metrics, b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n")[0].status == 400
    with connect(metrics) as sock:  # one request per connection: it is closed after
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response().header("Connection") == "close"
        assert sock.recv(100) == b""
    # The application's own port knows nothing of /metrics.
    assert get(where, "/metrics").body == b"Hello, World"


def test_silent_clients_do_not_stall_a_scrape(metered: tuple[str, str]) -> None:
    _, metrics = metered
    silent = [connect(metrics) for _ in range(10)]
    trickle = connect(metrics)
    try:
        trickle.sendall(b"GET /metr")
        started = time.monotonic()
        assert "kakehashi_connections_open" in {name for name, _ in scrape(metrics)}
        assert time.monotonic() - started < 2.0
    finally:
        for sock in [*silent, trickle]:
            sock.close()


def test_past_the_connection_bound_the_oldest_is_dropped(metered: tuple[str, str]) -> None:
    _, metrics = metered
    silent = [connect(metrics) for _ in range(64)]  # the bound
    try:
        time.sleep(0.2)  # all accepted
        assert "kakehashi_connections_open" in {name for name, _ in scrape(metrics)}
        assert silent[0].recv(100) == b""  # the oldest made room for the scrape
        silent[-1].sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Reader(silent[-1]).read_response().status == 200  # the newest were kept
    finally:
        for sock in silent:
            sock.close()


def test_a_silent_client_is_dropped_at_its_deadline() -> None:
    listener = MetricsListener("127.0.0.1:0", lambda: b"up 1\n", deadline=0.5)
    listener.start()
    try:
        with connect(listener.address, timeout=10) as sock:
            started = time.monotonic()
            assert sock.recv(100) == b""  # closed by the listener, not by us
            assert 0.4 < time.monotonic() - started < 5.0
        assert get(listener.address, "/metrics").body == b"up 1\n"
    finally:
        listener.close()
    assert not any(t.name == "kakehashi-metrics" for t in threading.enumerate())


def test_a_failing_source_is_a_500_and_the_listener_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([RuntimeError("a bug"), b"up 1\n"])

    def source() -> bytes:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    listener = MetricsListener("127.0.0.1:0", source)
    listener.start()
    try:
        assert get(listener.address, "/metrics").status == 500
        assert get(listener.address, "/metrics").body == b"up 1\n"
    finally:
        listener.close()
    assert "cannot render /metrics" in caplog.text


def test_the_listener_on_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        listener = MetricsListener("[::1]:0", lambda: b"up 1\n")
    except ConfigError as exc:  # ::1 not configured in this container
        pytest.skip(str(exc))
    listener.start()
    try:
        assert listener.address.startswith("[::1]:")
        assert get(listener.address, "/metrics").body == b"up 1\n"
    finally:
        listener.close()


def test_metrics_are_off_by_default(start_engine: Callable[..., Any]) -> None:
    server = start_engine()
    assert server._metrics_http is None and server.ctx.metrics is None


def test_promtool_accepts_the_exposition(metered: tuple[str, str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    where, metrics = metered
    get(where, "/")
    get(where, "/boom")
    body = get(metrics, "/metrics").body
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- kakehashi serve, one process and pre-fork ---------------------------------------------


def metrics_of(proc: ServeProcess) -> str:
    assert proc.wait_for("/metrics", 10), proc.stderr
    found = re.search(r"metrics at http://(\S+)/metrics", proc.stderr)
    assert found is not None, proc.stderr
    return found[1]


@pytest.mark.parametrize("app", ["tests.server_apps:app", "tests.asgi_apps:app"])
def test_serve_with_metrics_bind(serve_process: Spawn, app: str) -> None:
    proc = serve_process(app, "--port", "0", "--metrics-bind", "127.0.0.1:0")
    where, metrics = proc.address(), metrics_of(proc)
    for _ in range(3):
        get(where, "/")
    assert wait_until(lambda: get_2xx(scrape(metrics)) == 3, 5)
    assert "ignored" not in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_prefork_asgi_workers_are_counted_by_the_parent(serve_process: Spawn) -> None:
    proc = serve_process(
        "tests.asgi_apps:app", "--port", "0", "--workers", "2", "--metrics-bind", "127.0.0.1:0"
    )
    where, metrics = proc.address(), metrics_of(proc)
    pids = {int(get(where, "/pid").body) for _ in range(200)}
    assert len(pids) == 2 and proc.proc.pid not in pids
    assert wait_until(lambda: get_2xx(scrape(metrics)) == 200, 5)
    assert one(scrape(metrics), "kakehashi_connections_accepted_total") >= 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_metrics_bind_in_use_exits_2(serve_process: Spawn) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            proc = serve_process(
                "tests.server_apps:app", "--port", "0", "--workers", workers,
                "--metrics-bind", f"127.0.0.1:{port}",
            )  # fmt: skip
            assert proc.wait(10) == 2
            assert "cannot listen for metrics" in proc.stderr


class Watcher:
    """Scrapes in a loop until stopped, keeping every request total it saw."""

    def __init__(self, metrics: str) -> None:
        self.metrics = metrics
        self.seen: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-scraper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 30  # bounded
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.seen.append(requests_total(scrape(self.metrics)))
            time.sleep(0.01)

    def finish(self) -> list[float]:
        self.stop.set()
        self.thread.join(5)
        return self.seen


def test_prefork_totals_are_exact_and_survive_a_killed_worker(serve_process: Spawn) -> None:
    proc = serve_process(
        "tests.server_apps:app", "--port", "0", "--workers", "2", "--threads", "2",
        "--metrics-bind", "127.0.0.1:0",
    )  # fmt: skip
    where, metrics = proc.address(), metrics_of(proc)
    pids: set[int] = set()
    try:
        for _ in range(1000):  # one connection each, so the kernel spreads them over both
            pids.add(int(get(where, "/pid").body))
        assert len(pids) == 2 and proc.proc.pid not in pids
        # Exactly 1,000: none lost, none counted twice, /metrics scrapes not among them.
        assert wait_until(lambda: requests_total(scrape(metrics)) == 1000, 5)
        assert get_2xx(scrape(metrics)) == 1000
        watcher = Watcher(metrics)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)  # a worker we started (through our child), by pid
        assert proc.wait_for("starting another", 5)
        assert wait_until(lambda: len(watcher.seen) > 20, 5)
        seen = watcher.finish()
        assert seen == sorted(seen) and min(seen) == 1000  # never lower, while it was replaced
        got = scrape(metrics)
        assert requests_total(got) == 1000
        assert one(got, "kakehashi_worker_restarts_total") == 1
        for _ in range(100):
            pids.add(int(get(where, "/pid").body))
        assert len(pids) >= 3  # the replacement served some
        assert wait_until(lambda: requests_total(scrape(metrics)) == 1100, 5)
    finally:  # the parent stops its workers (test_shutdown checks that none is left)
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0
