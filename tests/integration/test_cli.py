"""``kakehashi serve`` / ``python -m kakehashi serve`` / ``kakehashi.server.serve`` as real
processes: startup banner, flags, exit codes, the access log."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, SRC, ServeProcess
from tests.wire import get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Spawn = Callable[..., ServeProcess]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))


def test_banner_and_serving(serve_process: Spawn) -> None:
    proc = serve_process("tests.server_apps:app", "-b", "127.0.0.1:0", "--threads", "3")
    where = proc.address()
    assert get(where, "/pid").body == str(proc.proc.pid).encode()
    banner = proc.stderr
    assert f"http://{where}/" in banner
    assert "tests.server_apps:app" in banner
    assert f"pid {proc.proc.pid}" in banner and "3 thread(s)" in banner
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_demo_app_is_the_default(serve_process: Spawn) -> None:
    proc = serve_process("--port", "0", "--host", "127.0.0.1")
    where = proc.address()
    assert get(where, "/greeting/%E5%A4%AA%E9%83%8E").body == "Hello, 太郎!".encode()
    assert "kakehashi.demo:app" in proc.stderr
    proc.signal(signal.SIGINT)
    assert proc.wait() == 0


@pytest.mark.skipif(shutil.which("kakehashi") is None, reason="kakehashi script not installed")
def test_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        ["kakehashi", "serve", "--threads", "0"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "--threads must be positive" in result.stderr


def test_several_binds_and_factory(serve_process: Spawn, tmp_path: Path) -> None:
    sock_path = tmp_path / "k.sock"
    proc = serve_process(
        "tests.server_apps:make_app()", "-b", "127.0.0.1:0", "-b", f"unix:{sock_path}"
    )
    assert proc.wait_for(f"unix:{sock_path}")
    where = proc.address()
    assert get(where).body == b"Hello, World"
    assert get(f"unix:{sock_path}").body == b"Hello, World"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_access_logfile_and_log_level(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    proc = serve_process(
        "tests.server_apps:app", "--port", "0", "--access-logfile", str(log),
        "--log-level", "debug", "--header-timeout", "0.3",
    )  # fmt: skip
    where = proc.address()
    get(where, "/x?y=1", "User-Agent: tester\r\n")
    assert wait_until(lambda: log.exists() and "tester" in log.read_text())
    line = log.read_text().splitlines()[0]
    assert '"GET /x?y=1 HTTP/1.1" 200 12 "-" "tester"' in line
    assert "GET /x" not in proc.stderr  # not on stderr too
    with socket.create_connection(("127.0.0.1", int(where.rsplit(":", 1)[1]))):
        assert proc.wait_for("silent connection timeout", 5)  # debug level shows it
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_access_log_to_stderr_by_default(serve_process: Spawn) -> None:
    proc = serve_process("tests.server_apps:app", "--port", "0")
    get(proc.address(), "/logged")
    assert proc.wait_for('"GET /logged HTTP/1.1" 200')
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


BAD_INVOCATIONS = [
    (["--threads", "0"], "--threads must be positive"),
    (["--bind", "nowhere"], "cannot bind to 'nowhere'"),
    (["--header-timeout", "-1"], "--header-timeout must be positive"),
    (["--host", "127.0.0.1", "--bind", "127.0.0.1:0"], "only one of --bind, --host/--port"),
    (["--threads", "x"], "invalid int value"),
    (["-w", "2", "-b", ":0", "a:app", "b:app"], "unrecognized arguments: b:app"),
    (["--log-level", "loud"], "--log-level must be debug, info, warning, error or critical"),
    (["tests.nope:app", "--port", "0"], "cannot import 'tests.nope'"),
    (["tests.server_apps:missing", "--port", "0"], "has no attribute"),
    (["tests.server_apps:not_callable", "--port", "0"], "not callable"),
    (["not an app", "--port", "0"], "is not module:attr"),
    (["tests.broken_app:app", "--port", "0"], "broken on purpose"),
    (["tests.server_apps:broken_factory()", "--port", "0"], "broken on purpose"),
    (["--port", "0", "--access-logfile", "/nonexistent/dir/a.log"], "/nonexistent/dir/a.log"),
]


def test_bad_config_or_app_exits_2() -> None:
    # All at once: each is a process start, and they are independent.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kakehashi", "serve", *argv],
            env=_env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv, _ in BAD_INVOCATIONS
    ]
    try:
        for proc, (argv, message) in zip(procs, BAD_INVOCATIONS, strict=True):
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 2, (argv, err)
            assert message in err, (argv, err)
            if "broken on purpose" in message:  # the application's own failure: where
                assert "Traceback (most recent call last)" in err, err
                assert 'raise RuntimeError("this module is broken on purpose")' in err or (
                    "broken_factory" in err
                ), err
                assert "importlib" not in err and "kakehashi/cli" not in err, err
            else:  # a bad setting or reference: one line, two for a usage error
                assert "Traceback" not in err
                assert len(err.splitlines()) <= 2, err
            if "invalid" in message or "unrecognized" in message:
                assert err.splitlines()[1] == "see 'kakehashi serve --help'", err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def test_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "kakehashi", "serve", "--port", str(port)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_function(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import logging, sys
            from kakehashi.server import serve
            from tests.server_apps import app
            logging.basicConfig(level=logging.INFO, stream=sys.stderr)
            serve(app, bind="127.0.0.1:0", threads=2)
            print("returned", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "kakehashi listening on" in line
        where = line.rsplit(" on ", 1)[1].strip()
        assert get(where).body == b"Hello, World"
        proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: a graceful shutdown
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "returned" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_gunicorn_command_line_serves(serve_process: Spawn) -> None:
    proc = serve_process("-w", "2", "-b", "127.0.0.1:0", "-t", "20", "tests.server_apps:app")
    where = proc.address()
    assert wait_until(lambda: proc.stderr.count(" ready") >= 2, 10), proc.stderr
    assert get(where, "/").body == b"Hello, World"
    assert "2 worker(s)" in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_a_uvicorn_command_line_serves(serve_process: Spawn, tmp_path: Path) -> None:
    proc = serve_process(
        "--factory", "tests.server_apps:make_app", "--host", "127.0.0.1", "--port", "0",
        "--timeout-keep-alive", "2", "--no-access-log", "--log-level", "debug",
    )  # fmt: skip
    assert get(proc.address(), "/").body == b"Hello, World"
    assert "tests.server_apps:make_app" in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_the_app_and_logging_from_the_config_file(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    config = tmp_path / "kakehashi.toml"
    config.write_text(
        f'app = "tests.server_apps:app"\nbind = "127.0.0.1:0"\naccess-logfile = "{log}"\n'
        'log-level = "debug"\nworkers = 1\n'
    )
    proc = serve_process("-c", str(config))
    get(proc.address(), "/from-file")
    assert wait_until(lambda: log.exists() and "/from-file" in log.read_text()), proc.stderr
    assert "tests.server_apps:app" in proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


IMPORT_FAILURE = """import os

SETTING = "before"
DATABASE_URL = os.environ["DATABASE_URL"]
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_import_failure_shows_its_traceback(tmp_path: Path, workers: str) -> None:
    (tmp_path / "badimport.py").write_text(IMPORT_FAILURE)
    env = {k: v for k, v in _env().items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "kakehashi", "serve", "badimport:app", "-b", "127.0.0.1:0",
         "-w", workers, "--chdir", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "Traceback (most recent call last)" in err
    assert f'File "{tmp_path / "badimport.py"}", line 4, in <module>' in err
    assert 'DATABASE_URL = os.environ["DATABASE_URL"]' in err
    assert "KeyError: 'DATABASE_URL'" in err
    assert "importing 'badimport' failed: KeyError('DATABASE_URL')" in err
    assert "importlib" not in err and "load_app" not in err  # the machinery is left out
