"""The process manager with ASGI applications (``kakehashi serve --workers N``): each worker
tells the application's kind after importing it and serves it on the asyncio engine; SIGHUP
replaces the workers one at a time, ``--max-requests`` recycles them, ``--timeout`` replaces
one whose event loop is blocked, and a lifespan refusal is a failed boot.  Short and bounded:
two workers, a few seconds of load."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.integration.keepalive_load import KeepAliveLoad
from tests.integration.processes import alive, ready_workers, started_workers
from tests.wire import connect, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
APP = "tests.asgi_apps:app"


@pytest.mark.parametrize("preload", [False, True])
def test_workers_serve_an_asgi_app(serve_process: Spawn, preload: bool) -> None:
    extra = ["--preload"] if preload else []
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--loop", "asyncio", *extra)
    where = proc.address()
    pids = ready_workers(proc, 2)
    seen = {int(get(where, "/pid").body) for _ in range(100)}
    assert seen == set(pids)
    parent, worker = (int(n) for n in get(where, "/imported").body.split())
    assert (parent == proc.proc.pid) is preload and worker in pids
    told = proc.stderr.count("an ASGI 3 application")
    assert told == (1 if preload else 2)  # the parent says it once, or each worker does
    assert "Traceback" not in proc.stderr and "ignored" not in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not any(alive(pid) for pid in pids)


def test_thread_settings_are_named_by_each_worker(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--threads", "8")
    ready_workers(proc, 2)
    lines = [line for line in proc.lines if "--threads 8: mean(s) nothing" in line]
    assert len(lines) == 2  # the parent could not know: each worker says it
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_sighup_replaces_every_worker_under_load_and_loses_nothing(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "2", "--no-access-log")
    where = proc.address()
    first = ready_workers(proc, 2)
    with KeepAliveLoad(where, connections=20, limit=15) as load:
        time.sleep(1)
        proc.signal(signal.SIGHUP)
        assert proc.wait_for("reload done", 10), proc.stderr
        time.sleep(1)
    result = load.result
    assert not any(alive(pid) for pid in first)
    assert set(result.by_pid) - set(first)  # the new workers served
    assert result.ok > 100, result.ok
    assert result.failures == [], (len(result.failures), result.failures[:5])
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_max_requests_recycles_workers_under_load_and_loses_nothing(serve_process: Spawn) -> None:
    proc = serve_process(
        APP, "--port", "0", "--workers", "2", "--no-access-log",
        "--max-requests", "200", "--max-requests-jitter", "20",
    )  # fmt: skip
    where = proc.address()
    ready_workers(proc, 2)
    with KeepAliveLoad(where, connections=20, limit=20) as load:
        recycled = wait_until(lambda: proc.stderr.count("(--max-requests)") >= 3, 15)
    assert recycled, proc.stderr[-2000:]
    assert len(set(load.result.by_pid)) >= 3
    assert load.result.failures == [], (len(load.result.failures), load.result.failures[:5])
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_timeout_replaces_a_worker_whose_loop_is_blocked(serve_process: Spawn) -> None:
    proc = serve_process(
        APP, "--port", "0", "--workers", "2", "--timeout", "2", "--graceful-timeout", "1",
    )  # fmt: skip
    where = proc.address()
    pids = ready_workers(proc, 2)
    with connect(where, timeout=15) as blocked:
        blocked.sendall(b"GET /block?60 HTTP/1.1\r\nHost: x\r\n\r\n")  # time.sleep in async
        stuck_at = time.monotonic()
        assert proc.wait_for("timed out", 6), proc.stderr
        assert time.monotonic() - stuck_at < 5.5
    # The arbiter logs the engine's own words: the loop, not threads it does not have.
    assert "timed out (the event loop (" in proc.stderr and "made no progress" in proc.stderr
    assert "every thread is stuck" not in proc.stderr
    # The loop watchdog's line and the stacks the aborted worker dumped: the worker writes
    # them, not the arbiter, so they can come after its "timed out".
    told = ("event loop blocked for", "in _block")
    assert wait_until(lambda: all(text in proc.stderr for text in told), 5), proc.stderr[-2000:]
    # Dumping its stacks is not the end of it: the arbiter reaps it, or SIGKILLs it 1 s on.
    assert wait_until(lambda: len([pid for pid in pids if not alive(pid)]) == 1, 3)
    assert wait_until(lambda: len(ready_workers(proc, 3)) == 3, 5)
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_a_lifespan_refusal_in_the_workers_is_a_failed_boot(serve_process: Spawn) -> None:
    proc = serve_process("tests.asgi_apps:failing_startup", "--port", "0", "--workers", "2")
    assert proc.wait(30) == 1
    assert "no database at db:5432" in proc.stderr
    assert "failed to boot" in proc.stderr and " ready\n" not in proc.stderr
    assert len(started_workers(proc)) <= 7  # given up after a few, not replaced forever


def _write_module(path: Path, body: bytes, bump: float) -> None:
    path.write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        f"    await send({{'type': 'http.response.body', 'body': {body!r}}})\n"
    )
    stamp = time.time() + bump  # a new mtime even within the same second (and .pyc check)
    os.utime(path, (stamp, stamp))


def test_reload_serves_the_edited_asgi_module(serve_process: Spawn, tmp_path: Path) -> None:
    module = tmp_path / "edited_asgi_app.py"
    _write_module(module, b"one", 0)
    proc = serve_process("edited_asgi_app:app", "--port", "0", "--chdir", str(tmp_path), "--reload")
    where = proc.address()
    ready_workers(proc, 1)
    assert get(where, "/").body == b"one"
    _write_module(module, b"second", 2)
    assert wait_until(lambda: get(where, "/").body == b"second", 10), proc.stderr
    assert "edited_asgi_app.py changed (--reload)" in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_an_app_of_neither_kind_stops_the_workers_with_exit_2(serve_process: Spawn) -> None:
    proc = serve_process("tests.asgi_apps:neither", "--port", "0", "--workers", "2")
    assert proc.wait(20) == 2
    assert "is neither a WSGI application" in proc.stderr
