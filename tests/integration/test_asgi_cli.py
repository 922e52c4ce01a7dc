"""``kakehashi serve`` with ASGI applications: telling them from WSGI ones, the start lines,
signals and lifespan, on both loops; and ``kakehashi.server.serve`` from Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SRC, ServeProcess
from tests.wire import Response, get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Spawn = Callable[..., ServeProcess]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_asgi_app_is_told_and_served(serve_process: Spawn, loop: str) -> None:
    proc = serve_process("tests.asgi_apps:app", "--port", "0", "--loop", loop)
    where = proc.address()
    assert get(where).body == b"Hello, World"
    assert "tests.asgi_apps:app is an ASGI 3 application" in proc.stderr
    assert f"one {loop} event loop" in proc.stderr


def test_a_wsgi_app_is_told_too_and_asgi_settings_are_named(serve_process: Spawn) -> None:
    proc = serve_process("tests.server_apps:app", "--port", "0", "--limit-concurrency", "5")
    assert get(proc.address()).body == b"Hello, World"
    assert "tests.server_apps:app is a WSGI application" in proc.stderr
    assert "--limit-concurrency 5: mean(s) nothing to a WSGI application" in proc.stderr


def test_thread_settings_are_named_once_for_an_asgi_app(serve_process: Spawn) -> None:
    proc = serve_process("tests.asgi_apps:app", "--port", "0", "--threads", "8")
    proc.address()
    lines = [line for line in proc.lines if "--threads 8" in line]
    assert len(lines) == 1 and "mean(s) nothing to an ASGI application" in lines[0]


def test_asgi2_is_detected_and_interface_decides_for_a_wrapper(serve_process: Spawn) -> None:
    asgi2 = serve_process("tests.asgi_apps:ASGI2App", "--port", "0")
    assert get(asgi2.address(), "/x").body == b"asgi2 /x"
    assert "an ASGI 2 application" in asgi2.stderr
    wrapped = serve_process("tests.asgi_apps:wrapped", "--port", "0", "--interface", "asgi")
    assert get(wrapped.address()).body == b"Hello, World"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tests.asgi_apps:neither"], "is neither a WSGI application"),
        (["tests.asgi_apps:neither", "--workers", "2", "--preload"], "is neither a WSGI"),
        (["tests.asgi_apps:app", "--interface", "rsgi"], "--interface must be"),
        (["tests.asgi_apps:app", "--loop", "nosuchloop"], "--loop must be"),
    ],
)
def test_what_cannot_be_served_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kakehashi", "serve", *argv, "--port", "0"],
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "kakehashi:" in line]) == 1


def test_a_failed_startup_exits_non_zero_with_the_apps_message(serve_process: Spawn) -> None:
    proc = serve_process("tests.asgi_apps:failing_startup", "--port", "0")
    assert proc.wait(15) == 1
    assert "no database at db:5432" in proc.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_during_the_startup_is_a_graceful_stop(serve_process: Spawn, loop: str) -> None:
    # The address is printed before the lifespan startup runs; a signal from then on is
    # handled (it killed the process, exit -15, before the handlers came after the startup).
    proc = serve_process("tests.asgi_apps:slow_startup", "--port", "0", "--loop", loop)
    proc.address()
    time.sleep(0.3)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 1.5  # the startup is cancelled, not awaited
    assert "SIGTERM: shutting down gracefully" in proc.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_finishes_the_request_then_runs_the_lifespan_shutdown(
    serve_process: Spawn, loop: str
) -> None:
    proc = serve_process("tests.asgi_apps:with_lifespan", "--port", "0", "--loop", loop,
                         "--graceful-timeout", "5")  # fmt: skip
    where = proc.address()
    out: list[Any] = []
    client = threading.Thread(target=lambda: out.append(get(where, "/slow?1", timeout=10)))
    client.start()
    time.sleep(0.3)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    client.join(10)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5.5
    assert isinstance(out[0], Response) and out[0].body == b"slept 1"
    assert out[0].header("connection") == "close"
    assert "SIGTERM: shutting down gracefully" in proc.stderr
    assert proc.proc.stdout is not None
    assert "lifespan shutdown" in proc.proc.stdout.read()


def test_serve_function_serves_an_asgi_app(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import logging, sys
            from kakehashi.server import serve
            from tests.asgi_apps import with_lifespan
            logging.basicConfig(level=logging.INFO, stream=sys.stderr)
            serve(with_lifespan, bind="127.0.0.1:0", loop="asyncio")
            print("returned", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=_env(), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        assert "an ASGI application, on the asyncio event loop" in lines[0]
        where = lines[1].rsplit(" on ", 1)[1].strip()
        assert get(where, "/state").body == b"[('started', 'yes')]"
        proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: a graceful shutdown
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "lifespan shutdown" in out and "returned" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
