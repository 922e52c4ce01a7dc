"""Loose ends a server must tie: the access line of a failed request, the Unix socket file."""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import wire
from tests.conftest import ServeProcess, StartServer, addr

pytestmark = pytest.mark.integration


def failing_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise RuntimeError("boom")


def test_a_500_gets_its_access_log_line(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    server = start_server(failing_app)
    response = wire.get(addr(server), "/explode")
    assert response.status == 500
    # The line is written just after the response went out: give the worker a moment.
    deadline = time.monotonic() + 3
    lines: list[str] = []
    while not lines and time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == "kakehashi.access"]
        time.sleep(0.01)
    assert len(lines) == 1
    assert '"GET /explode HTTP/1.1" 500 ' in lines[0]


def test_unix_socket_file_is_removed_on_shutdown(
    tmp_path: Path, serve_process: Callable[..., ServeProcess]
) -> None:
    path = tmp_path / "k.sock"
    proc = serve_process("tests.server_apps:hello", "--bind", f"unix:{path}")
    assert proc.wait_for("serving"), proc.stderr
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert not path.exists()
