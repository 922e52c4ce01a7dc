"""``app.run()`` for real: a script serving on 127.0.0.1 in a subprocess, real requests, and
the access lines and error tracebacks it logs (or leaves to the program's logging setup)."""

from __future__ import annotations

import http.client
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.wire import wait_until

SCRIPT = """\
import logging
import sys

from kakehashi.app import App

{setup}
app = App()

@app.get("/hello")
def hello(req):
    return "hello"

@app.get("/boom")
def boom(req):
    raise RuntimeError("kaboom")

app.run(port=0{run_args})
"""
ACCESS_LINE = re.compile(
    r'127\.0\.0\.1 - - \[[^]]+\] "GET /hello\?x=1 HTTP/1\.1" 200 5 "-" "run-test" \d+\n'
)
RunApp = Callable[..., ServeProcess]


@pytest.fixture
def run_app(tmp_path: Path) -> Iterator[RunApp]:
    """``run_app(setup=..., run_args=...)``: the script above under ``python``, once its
    banner is out; killed (by PID) at teardown if it is still running."""
    procs: list[ServeProcess] = []

    def start(setup: str = "", run_args: str = "") -> ServeProcess:
        script = tmp_path / f"devserver{len(procs)}.py"
        script.write_text(SCRIPT.format(setup=setup, run_args=run_args), encoding="utf-8")
        proc = ServeProcess([str(script)], cwd=tmp_path, command=())
        procs.append(proc)
        assert proc.wait_for("(Ctrl-C to stop)"), proc.stderr
        return proc

    yield start
    for proc in procs:
        proc.stop()


def where(proc: ServeProcess) -> tuple[str, int]:
    match = re.search(r" \* kakehashi\.app on http://127\.0\.0\.1:(\d+)/", proc.stderr)
    assert match, proc.stderr
    return "127.0.0.1", int(match.group(1))


def get(proc: ServeProcess, target: str) -> tuple[int, bytes]:
    host, port = where(proc)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", target, headers={"User-Agent": "run-test"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def stop(proc: ServeProcess) -> None:
    """Ctrl-C, as a developer stops it: a clean exit."""
    proc.signal(signal.SIGINT)
    assert proc.wait() == 0, proc.stderr


@pytest.mark.timeout(60)
def test_each_request_gets_an_access_line_and_errors_their_traceback(run_app: RunApp) -> None:
    proc = run_app()
    assert get(proc, "/hello?x=1") == (200, b"hello")
    assert get(proc, "/boom")[0] == 500
    assert proc.wait_for('"GET /boom HTTP/1.1" 500'), proc.stderr
    # Each line is queued by its request's thread after the response: not in request order.
    assert wait_until(lambda: ACCESS_LINE.search(proc.stderr), 5), proc.stderr
    assert "ERROR GET /boom failed\nTraceback" in proc.stderr
    assert "RuntimeError: kaboom" in proc.stderr
    stop(proc)
    assert len(ACCESS_LINE.findall(proc.stderr)) == 1  # once, not once per handler


@pytest.mark.timeout(60)
def test_logging_the_program_configured_gets_the_lines_instead(run_app: RunApp) -> None:
    setup = 'logging.basicConfig(stream=sys.stdout, format="CONFIGURED %(name)s: %(message)s")'
    proc = run_app(setup=setup)
    assert get(proc, "/hello?x=1") == (200, b"hello")
    assert get(proc, "/boom")[0] == 500
    stop(proc)
    assert proc.proc.stdout is not None
    out = proc.proc.stdout.read()
    assert re.search(r"CONFIGURED kakehashi\.access: " + ACCESS_LINE.pattern, out), out
    assert "CONFIGURED kakehashi.app: GET /boom failed" in out
    assert '"GET /hello' not in proc.stderr and "kaboom" not in proc.stderr


@pytest.mark.timeout(60)
def test_access_log_false_logs_no_request_but_still_errors(run_app: RunApp) -> None:
    proc = run_app(run_args=", access_log=False")
    assert get(proc, "/hello?x=1") == (200, b"hello")
    assert get(proc, "/boom")[0] == 500
    assert proc.wait_for("RuntimeError: kaboom"), proc.stderr
    stop(proc)  # the access log would be flushed by now
    assert '"GET /' not in proc.stderr


@pytest.mark.timeout(60)
def test_a_bad_setting_fails_before_serving(run_app: RunApp, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text(SCRIPT.format(setup="", run_args=", threads=0"), encoding="utf-8")
    proc = ServeProcess([str(script)], cwd=tmp_path, command=())
    try:
        assert proc.wait() != 0
        assert "ConfigError" in proc.stderr and "threads" in proc.stderr
        assert "Ctrl-C to stop" not in proc.stderr
    finally:
        proc.stop()
