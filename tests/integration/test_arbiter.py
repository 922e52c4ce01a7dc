"""The process manager (``kakehashi serve --workers N``), with real processes and sockets:
bounds, fork failure, signals, a dead parent, stuck and crashing workers, preloading."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, SRC, ServeProcess
from tests.integration.processes import (
    alive,
    cli,
    ready_workers,
    refused,
    started_workers,
    two_workers,
)
from tests.wire import Reader, connect, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]

Spawn = Callable[..., ServeProcess]
APP = "tests.integration.manager_apps:app"


# -- issue 8 item 12: bounded counts, SIGTERM while spawning, a failed fork ------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--workers", "100000", "--workers must be at most 256, not 100,000"),
        ("--threads", "100000", "--threads must be at most 1,024, not 100,000"),
        ("--backlog", "10000000", "--backlog must be at most 65,535, not 10,000,000"),
        ("--max-requests", "-5", "--max-requests must be 0 or more, not -5"),
    ],
)
def test_counts_above_their_bound_are_refused_in_one_line(
    flag: str, value: str, message: str
) -> None:
    done = cli("serve", APP, "--port", "0", flag, value)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"kakehashi: {message}"]


def test_sigterm_while_spawning_stops_at_once(serve_process: Spawn) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", "64", "--threads", "1")
    assert proc.wait_for("started worker", 10)
    proc.signal(signal.SIGTERM)
    try:
        code = proc.wait(20)
    except subprocess.TimeoutExpired:  # once in CI (3.12): say what the arbiter last said
        pytest.fail("no exit 20 s after SIGTERM; the arbiter's log:\n" + proc.stderr[-4000:])
    assert code == 0
    pids = started_workers(proc)
    assert 0 < len(pids) < 64, len(pids)  # it stopped forking when told to
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 5), "orphan workers"
    assert "Traceback" not in proc.stderr


def _limited_nobody(limit: int) -> None:
    """In the child before exec: at most ``limit`` processes for user nobody, then become it
    (root is exempt from RLIMIT_NPROC, so fork() can only be made to fail as another user)."""
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_a_failed_fork_is_one_line_and_stops_the_started_workers(tmp_path: Path) -> None:
    # Python itself lives where nobody may not read, so it starts as root, imports what it
    # needs, then drops to nobody with a low process limit: the 4th worker cannot be forked.
    script = (
        "import os, resource, sys\n"
        "import kakehashi.cli, kakehashi.server.process.arbiter, tests.integration.manager_apps\n"
        "import encodings.idna, ctypes, faulthandler, random, tomllib\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "sys.exit(kakehashi.cli.main(sys.argv[1:]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "serve", APP, "--port", "0",
         "--workers", "30", "--threads", "1", "--no-access-log"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        preexec_fn=lambda: _limited_nobody(12),
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if "cannot start a worker process" in line]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    pids = [int(pid) for pid in re.findall(r"started worker (\d+)", stderr)]
    assert 0 < len(pids) < 30
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 5), "orphan workers"


# -- issue 10: the parent dies, signals, stuck and crashing workers ---------------------------


def test_workers_exit_when_the_parent_is_killed(serve_process: Spawn) -> None:
    proc, where, pids = two_workers(serve_process, APP, "--threads", "2")
    assert get(where, "/").status == 200
    proc.signal(signal.SIGKILL)
    proc.wait(5)
    killed = time.monotonic()
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 2.5), "orphan workers"
    assert time.monotonic() - killed < 2.5
    assert wait_until(lambda: refused(where), 2)
    host, _, port = where.rpartition(":")
    with socket.socket() as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))


def test_ttin_adds_and_ttou_removes_a_worker(serve_process: Spawn) -> None:
    proc, where, first = two_workers(serve_process, APP, "--threads", "1")
    proc.signal(signal.SIGTTIN)
    third = ready_workers(proc, 3)[-1]
    assert third not in first and "SIGTTIN: 3 worker(s)" in proc.stderr
    proc.signal(signal.SIGTTOU)
    assert proc.wait_for("SIGTTOU: 2 worker(s)")
    assert wait_until(lambda: sum(alive(pid) for pid in (*first, third)) == 2, 5)
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_sigusr2_to_the_arbiter_is_refused_in_words(serve_process: Spawn) -> None:
    # gunicorn's "upgrade the executable"; its default action would have ended the arbiter
    proc, where, first = two_workers(serve_process, APP, "--threads", "1")
    proc.signal(signal.SIGUSR2)
    assert proc.wait_for("SIGUSR2 ignored")
    assert get(where, "/").status == 200
    assert all(alive(pid) for pid in first)  # the workers were not drained either
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigquit_stops_at_once(serve_process: Spawn, workers: int) -> None:
    proc = serve_process(APP, "--port", "0", "--workers", str(workers), "--graceful-timeout", "30")
    where = proc.address()
    pids = ready_workers(proc, workers) if workers > 1 else [proc.proc.pid]
    with connect(where) as sock:
        sock.sendall(b"GET /block?20 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        started = time.monotonic()
        proc.signal(signal.SIGQUIT)
        proc.wait(10)
        assert time.monotonic() - started < 3
    assert not any(alive(pid) for pid in pids)
    assert ("SIGQUIT: shutting down at once" if workers > 1 else "forced exit") in proc.stderr


def test_sigusr1_reopens_the_access_log(serve_process: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    proc = serve_process(
        APP, "--port", "0", "--workers", "2", "--threads", "1", "--access-logfile", str(log)
    )
    where = proc.address()
    ready_workers(proc, 2)
    for _ in range(4):
        assert get(where, "/first").status == 200
    assert wait_until(lambda: log.read_text().count("/first") == 4, 5)
    log.rename(tmp_path / "access.log.1")  # what logrotate does
    proc.signal(signal.SIGUSR1)
    time.sleep(0.5)  # the signal reaches the workers through the arbiter
    for _ in range(4):
        assert get(where, "/second").status == 200
    assert wait_until(lambda: log.exists() and log.read_text().count("/second") == 4, 5)
    old = (tmp_path / "access.log.1").read_text()
    assert old.count("/first") == 4 and "/second" not in old  # nothing lost, nothing mixed
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_sigusr1_reopens_the_access_log_in_one_process(
    serve_process: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    proc = serve_process(APP, "--port", "0", "--access-logfile", str(log))
    where = proc.address()
    assert get(where, "/first").status == 200
    assert wait_until(lambda: "/first" in log.read_text(), 5)  # logged after it is sent
    log.rename(tmp_path / "old.log")
    proc.signal(signal.SIGUSR1)
    assert proc.wait_for("SIGUSR1: reopened")
    assert get(where, "/second").status == 200
    assert wait_until(lambda: log.exists() and "/second" in log.read_text(), 5)
    assert "/first" in (tmp_path / "old.log").read_text()
    proc.signal(signal.SIGHUP)  # not a reload with one process, and not a crash either
    assert proc.wait_for("SIGHUP ignored")
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_timeout_replaces_a_worker_whose_threads_are_all_stuck(serve_process: Spawn) -> None:
    proc = serve_process(
        APP, "--port", "0", "--workers", "2", "--threads", "1", "--timeout", "2",
        "--graceful-timeout", "1",
    )  # fmt: skip
    where = proc.address()
    pids = ready_workers(proc, 2)
    with connect(where, timeout=15) as blocked:
        blocked.sendall(b"GET /block?60 HTTP/1.1\r\nHost: x\r\n\r\n")
        stuck_at = time.monotonic()
        time.sleep(0.3)  # its only thread is held: that worker accepts nothing from now on
        served = 0
        while time.monotonic() - stuck_at < 5:  # the other worker keeps serving meanwhile
            assert get(where, "/pid", timeout=5).status == 200
            served += 1
            if "timed out" in proc.stderr and len(started_workers(proc)) >= 3:
                break
            time.sleep(0.05)
        assert proc.wait_for("timed out", 1), proc.stderr
        assert time.monotonic() - stuck_at < 4.5
        assert served > 0
    assert "every thread is stuck: GET /block" in proc.stderr
    # The stacks are the aborted worker's (faulthandler, on the SIGABRT that follows the
    # arbiter's "timed out" line), and its exit comes after them: both can come later.
    assert wait_until(lambda: "in app" in proc.stderr and "manager_apps.py" in proc.stderr, 5)
    assert wait_until(lambda: not all(alive(pid) for pid in pids), 5)
    stuck = [pid for pid in pids if not alive(pid)]
    assert len(stuck) == 1
    assert wait_until(lambda: len(ready_workers(proc, 3)) == 3, 5)
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_timeout_spares_a_long_response_that_keeps_streaming(serve_process: Spawn) -> None:
    proc, where, pids = two_workers(serve_process, APP, "--threads", "1", "--timeout", "1")
    with connect(where, timeout=10) as sock:
        sock.sendall(b"GET /stream?3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert Reader(sock).read_to_eof().count(b"tick\n") >= 20  # 3 s, three timeouts
    assert "timed out" not in proc.stderr
    assert all(alive(pid) for pid in pids)
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_timeout_replaces_a_worker_that_holds_the_gil(serve_process: Spawn) -> None:
    proc, where, pids = two_workers(serve_process, APP, "--threads", "2", "--timeout", "2")
    with connect(where, timeout=15) as spinning:
        spinning.sendall(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
        spun_at = time.monotonic()
        assert proc.wait_for("no heartbeat for", 6), proc.stderr
        assert time.monotonic() - spun_at < 5
        assert spinning.recv(100) == b""  # that worker is gone
    assert wait_until(lambda: sum(alive(pid) for pid in pids) == 1, 3)
    assert proc.wait_for("Fatal Python error: Aborted", 3), proc.stderr  # faulthandler's dump
    assert proc.wait_for("manager_apps.py", 3)
    assert wait_until(lambda: len(ready_workers(proc, 3)) == 3, 5)
    assert get(where, "/").status == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_workers_failing_at_boot_back_off_then_exit_1(
    serve_process: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "broken"
    monkeypatch.setenv("MANAGER_APPS_BREAK", str(marker))
    proc = serve_process(
        "tests.integration.manager_apps:fragile()", "--port", "0", "--workers", "2"
    )
    where = proc.address()
    pids = ready_workers(proc, 2)
    marker.touch()  # from now on a new worker fails at boot
    os.kill(pids[0], signal.SIGKILL)
    started = time.monotonic()
    assert proc.wait(15) == 1
    assert time.monotonic() - started > 1.0  # it backed off between attempts
    assert "5 workers in a row failed to boot" in proc.stderr
    assert "the database is down (on purpose)" in proc.stderr
    assert len(started_workers(proc)) == 2 + 5  # no fork loop
    assert not alive(pids[1])
    assert refused(where)


def test_an_app_that_cannot_be_imported_exits_2(serve_process: Spawn) -> None:
    proc = serve_process("tests.integration.no_such_module:app", "--port", "0", "--workers", "2")
    assert proc.wait(15) == 2
    assert "worker failed to boot: cannot import" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("preload", [False, True])
def test_each_worker_imports_the_app_unless_preloaded(serve_process: Spawn, preload: bool) -> None:
    args = ["--preload"] if preload else []
    proc = serve_process(APP, "--port", "0", "--workers", "2", *args)
    where = proc.address()
    ready_workers(proc, 2)
    imported_by, worker = map(int, get(where, "/imported").body.split())
    parent = proc.proc.pid
    assert imported_by == (parent if preload else worker)
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
