"""kakehashi where Linux's and POSIX's extras are missing (macOS, Windows), checked on Linux:
tests/server/platform_strip.py removes them in a subprocess (epoll, poll, fork, sendfile,
writev, pread, Unix sockets, POSIX signals, ``resource``), then imports everything and serves.
"""

from __future__ import annotations

import json
import pkgutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import kakehashi
from tests.conftest import ROOT, SRC
from tests.integration.processes import cli
from tests.wire import get

pytestmark = pytest.mark.timeout(60)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, timeout=45, module="tests.server.platform_strip")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = _run("check")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_module_imports_without_epoll_fork_and_posix_extras(report: dict[str, Any]) -> None:
    modules = {m.name for m in pkgutil.walk_packages(kakehashi.__path__, "kakehashi.")}
    assert set(report["imported"]) == modules - {"kakehashi.__main__"}
    assert len(modules) > 50


def test_the_demo_is_served_through_the_portable_poller_on_select(report: dict[str, Any]) -> None:
    assert report["poller"] == "PortablePoller"
    assert report["selector"] == "SelectSelector"  # what Windows gets
    assert report["hello"] == "Hello, World"
    assert report["threads_left"] == []  # shut down cleanly, selector thread too


def test_select_caps_the_connection_limit_below_fd_setsize(report: dict[str, Any]) -> None:
    assert report["connection_limit"] == 1024 - 32


def test_files_and_spooled_responses_go_out_without_sendfile(report: dict[str, Any]) -> None:
    # a file_wrapper region (read and sent), and a 4 MiB stream to a reader that waits,
    # spooled past 64 KiB (written without writev, read back without sendfile or pread)
    assert report["file"] == [200, True]
    assert report["big"] == [200, True]
    assert report["file_sends"]["region"] > 0 and report["file_sends"]["spool"] > 0


def test_what_the_platform_cannot_do_is_refused_in_one_line(report: dict[str, Any]) -> None:
    refused = report["refused"]
    assert refused["workers"].startswith("--workers above 1 needs pre-fork worker processes")
    assert refused["unix"] == "unix: addresses need Unix sockets, which this platform lacks"
    assert refused["reuse_port"] == "--reuse-port: this platform has no SO_REUSEPORT"
    assert refused["epoll"] == "--poller epoll: this platform has no epoll (Linux only)"


def test_the_cli_refuses_workers_with_exit_2_and_one_line() -> None:
    done = _run("serve", "--workers", "2", "--bind", "127.0.0.1:0")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--workers above 1 needs pre-fork" in lines[0], done.stderr


def test_the_cli_serves_the_demo_and_ctrl_c_stops_it_gracefully() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.server.platform_strip", "serve", "--bind", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{SRC}:{ROOT}", "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if " serving " in line and " on " in line:
                break
        where = lines[-1].rsplit(" on ", 1)[1].strip().removeprefix("http://").rstrip("/")
        assert get(where, "/").body == b"Hello, World"
        proc.send_signal(signal.SIGINT)  # Ctrl-C (Ctrl-Break is SIGBREAK, Windows only)
        _, rest = proc.communicate(timeout=15)
        assert proc.returncode == 0, "".join(lines) + rest
        assert "SIGINT: shutting down gracefully" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
