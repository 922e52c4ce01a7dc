"""What a deployment relies on, with real processes: ``--pid``, ``--chdir``, ``--reuse-port``,
``--version``, ``--bind fd://N``, systemd socket activation and ``sd_notify``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SRC, ServeProcess
from tests.integration.processes import cli, ready_workers, socket_inodes
from tests.wire import exchange, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]

Spawn = Callable[..., ServeProcess]
APP = "tests.integration.manager_apps:app"
ASGI_APP = "tests.asgi_apps:app"


def test_version() -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("kakehashi ") and done.stdout.strip()[-1].isdigit()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pid_file_written_once_listening_and_removed_on_exit(
    serve_process: Spawn, tmp_path: Path, workers: str
) -> None:
    pid_file = tmp_path / "run" / "k.pid"
    pid_file.parent.mkdir()
    proc = serve_process(APP, "--port", "0", "--workers", workers, "--pid", str(pid_file))
    where = proc.address()
    assert pid_file.read_text() == f"{proc.proc.pid}\n"
    if workers == "2":
        ready_workers(proc, 2)
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not pid_file.exists()


def test_pid_file_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    done = cli("serve", APP, "--port", "0", "--pid", str(tmp_path / "no" / "such" / "dir.pid"))
    assert done.returncode == 2
    assert "cannot write --pid" in done.stderr


def test_chdir_imports_the_app_from_there(serve_process: Spawn, tmp_path: Path) -> None:
    (tmp_path / "elsewhere_app.py").write_text(
        "import os\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [os.getcwd().encode()]\n"
    )
    proc = serve_process("elsewhere_app:app", "--port", "0", "--chdir", str(tmp_path))
    assert get(proc.address(), "/").body == str(tmp_path).encode()
    done = cli("serve", APP, "--chdir", str(tmp_path / "missing"))
    assert done.returncode == 2 and "cannot --chdir" in done.stderr


def test_reuse_port_lets_two_servers_share_a_port(serve_process: Spawn) -> None:
    first = serve_process(APP, "--port", "0", "--reuse-port")
    where = first.address()
    port = where.rpartition(":")[2]
    second = serve_process(APP, "--port", port, "--reuse-port")
    assert second.address() == where
    assert get(where, "/").status == 200
    without = cli("serve", APP, "--port", port)
    assert without.returncode == 2 and "in use" in without.stderr


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]), PYTHONUNBUFFERED="1")


def test_bind_fd_serves_an_inherited_socket(listener: socket.socket) -> None:
    fd = listener.fileno()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kakehashi", "serve", APP, "--bind", f"fd://{fd}"],
        pass_fds=(fd,), stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    try:
        where = f"127.0.0.1:{listener.getsockname()[1]}"
        assert wait_until(lambda: _answers(where), 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.communicate(timeout=5)
    done = cli("serve", APP, "--bind", "fd://97")
    assert done.returncode == 2 and "fd://97" in done.stderr


def _answers(where: str) -> bool:
    try:
        return get(where, "/", timeout=1).status == 200
    except OSError:
        return False


# systemd starts the service with the socket as fd 3 and LISTEN_PID set to the service's own
# pid; this wrapper does the same: move the socket to fd 3, set the variables, exec.
_ACTIVATE = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "os.dup2(fd, 3); os.close(fd)\n"
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'kakehashi', 'serve', *sys.argv[2:]])\n"
)


def _notifications(sock: socket.socket, until: str, timeout: float = 10) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(until in m for m in got):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


@pytest.mark.parametrize(
    ("app", "workers"), [(APP, "1"), (APP, "2"), (ASGI_APP, "1"), (ASGI_APP, "2")]
)
def test_socket_activation_and_sd_notify(
    listener: socket.socket, tmp_path: Path, app: str, workers: str
) -> None:
    notify_path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        fd = listener.fileno()
        env = dict(_env(), NOTIFY_SOCKET=notify_path)
        proc = subprocess.Popen(
            [sys.executable, "-c", _ACTIVATE, str(fd), app, "--workers", workers,
             "--bind", "127.0.0.1:1"],  # ignored: systemd's sockets replace --bind
            pass_fds=(fd,), stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            assert any("READY=1" in m for m in _notifications(notify, "READY=1"))
            where = f"127.0.0.1:{listener.getsockname()[1]}"
            assert get(where, "/").status == 200
            if workers == "2":
                proc.send_signal(signal.SIGHUP)
                reload = _notifications(notify, "READY=1")
                assert "RELOADING=1" in reload[0] and "READY=1" in reload[-1], reload
            proc.send_signal(signal.SIGTERM)
            assert any("STOPPING=1" in m for m in _notifications(notify, "STOPPING=1"))
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=5)
    assert "1 socket(s) from systemd" in stderr


def test_print_config_merges_file_environment_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.toml"
    path.write_text("workers = 3\nthreads = 7\nmax-requests = 100\n")
    monkeypatch.setenv("KAKEHASHI_THREADS", "5")
    done = cli("serve", "--config", str(path), "--max-requests", "50", "--print-config")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert {"workers = 3", "threads = 5", "max-requests = 50"} <= set(lines)
    again = tmp_path / "printed.toml"
    again.write_text(done.stdout)  # what it prints, it reads back
    monkeypatch.delenv("KAKEHASHI_THREADS")
    assert cli("serve", "--config", str(again), "--print-config").stdout == done.stdout


def test_check_config_imports_the_app(tmp_path: Path) -> None:
    good = cli("serve", APP, "--check-config")
    assert good.returncode == 0 and "fine" in good.stderr
    bad_app = cli("serve", "tests.integration.manager_apps:nothing", "--check-config")
    assert bad_app.returncode == 2 and "has no attribute" in bad_app.stderr
    path = tmp_path / "bad.toml"
    path.write_text("threads = 0\n")
    bad_value = cli("serve", APP, "--config", str(path), "--check-config")
    assert bad_value.returncode == 2
    assert (
        bad_value.stderr.strip() == f"kakehashi: {path}: threads: --threads must be positive, not 0"
    )


def test_an_asgi_app_takes_the_config_file_and_the_environment(
    serve_process: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.toml"
    path.write_text('loop = "asyncio"\n')
    monkeypatch.setenv("KAKEHASHI_ACCESS_LOG_FORMAT", "json")
    proc = serve_process(ASGI_APP, "--port", "0", "--config", str(path))
    where = proc.address()
    assert proc.wait_for("one asyncio event loop", 5), (
        proc.stderr
    )  # from the file (after the banner)
    assert get(where, "/from-the-env").status == 200
    assert proc.wait_for('"path":"/from-the-env"', 5), proc.stderr  # a json access line
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    done = cli("serve", ASGI_APP, "--config", str(path), "--print-config")
    assert 'loop = "asyncio"' in done.stdout.splitlines()


def test_sighup_rereads_the_config_file(serve_process: Spawn, tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("workers = 2\nthreads = 1\n")
    proc = serve_process(APP, "--port", "0", "--config", str(path))
    where = proc.address()
    ready_workers(proc, 2)
    listening = socket_inodes(proc.proc.pid)  # the arbiter holds only its listener
    path.write_text("workers = 3\nthreads = 1\n")
    proc.signal(signal.SIGHUP)
    assert proc.wait_for("reload done", 10)
    assert wait_until(lambda: len(ready_workers(proc, 5)) >= 5, 5)  # 2 replaced, 1 added
    assert listening and listening <= socket_inodes(proc.proc.pid)  # never closed
    path.write_text("workers = 1000\n")
    proc.signal(signal.SIGHUP)
    assert proc.wait_for("configuration not reloaded", 5)
    assert f"{path}: workers: --workers must be at most 256" in proc.stderr
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_shutdown_delay_keeps_serving_then_drains(serve_process: Spawn, workers: str) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", workers, "--shutdown-delay", "1.5")
    where = proc.address()
    if workers == "2":
        ready_workers(proc, 2)
    keep_alive = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(where, keep_alive)[0].header("connection") is None  # kept alive
    proc.signal(signal.SIGTERM)
    asked = time.monotonic()
    assert proc.wait_for("before draining (--shutdown-delay)", 5)
    answered = 0
    while time.monotonic() - asked < 1.0:  # new connections are still served, and closed
        response = exchange(where, keep_alive, timeout=2)[0]
        assert (response.status, response.header("connection")) == (200, "close")
        answered += 1
        time.sleep(0.05)
    assert answered >= 5
    assert proc.wait(10) == 0
    assert time.monotonic() - asked >= 1.4


def _write_module(path: Path, body: str, bump: float) -> None:
    path.write_text(body)
    stamp = time.time() + bump  # a new mtime even within the same second (and .pyc check)
    os.utime(path, (stamp, stamp))


def test_reload_serves_the_edited_module_and_survives_a_syntax_error(
    serve_process: Spawn, tmp_path: Path
) -> None:
    module = tmp_path / "edited_app.py"
    template = (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'%s']\n"
    )
    _write_module(module, template % "one", 0)
    proc = serve_process("edited_app:app", "--port", "0", "--chdir", str(tmp_path), "--reload")
    where = proc.address()
    ready_workers(proc, 1)
    assert get(where, "/").body == b"one"
    _write_module(module, template % "second", 2)
    assert wait_until(lambda: get(where, "/").body == b"second", 10), proc.stderr
    assert "edited_app.py changed (--reload)" in proc.stderr
    _write_module(module, "def app(:\n", 4)
    assert proc.wait_for("new worker failed to boot", 10), proc.stderr
    assert "SyntaxError" in proc.stderr or "invalid syntax" in proc.stderr
    for _ in range(5):  # the old worker keeps serving
        assert get(where, "/").body == b"second"
    _write_module(module, template % "third!", 6)
    assert wait_until(lambda: get(where, "/").body == b"third!", 10), proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.parametrize("broken", ["import os\nURL = os.environ['NOT_SET_HERE']\n", "def app(:\n"])
def test_reload_waits_for_a_fix_when_the_app_cannot_be_imported(
    serve_process: Spawn, tmp_path: Path, broken: str
) -> None:
    module = tmp_path / "fixed_later.py"
    _write_module(module, broken, 0)
    proc = serve_process("fixed_later:app", "--port", "0", "--chdir", str(tmp_path), "--reload")
    where = proc.address()
    assert proc.wait_for("waiting for a change to a file (--reload)", 10), proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert f'File "{module}", line ' in proc.stderr  # where it failed
    assert ("URL = os.environ['NOT_SET_HERE']" in proc.stderr) or ("SyntaxError" in proc.stderr)
    time.sleep(0.5)
    assert proc.proc.poll() is None  # it did not exit
    _write_module(
        module,
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'fixed']\n",
        2,
    )
    assert proc.wait_for("fixed_later.py changed (--reload); importing the application again")
    assert wait_until(lambda: get(where, "/").body == b"fixed", 10), proc.stderr
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_reload_with_preload_is_refused() -> None:
    done = cli("serve", APP, "--reload", "--preload")
    assert done.returncode == 2 and "not with --preload" in done.stderr
