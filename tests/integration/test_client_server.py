"""The client against kakehashi's own server, run as ``python -m kakehashi serve APP --bind``.

Only the tutorial's routes are used (``/`` and ``/greeting/<name>``), so these tests hold for
the interim wsgiref-based ``serve`` (HTTP/1.0, one request per connection, APP ignored) and
for the real server once it lands.  Where the two differ (keep-alive), the test checks that
the client does what the server's answer says.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi import client
from kakehashi.client import Client
from tests.client.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.tutorial_app:app"


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes] | None:
    """Start the server; None when it exited at once (the interim serve refuses APP)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kakehashi", "serve", *argv, "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.stderr.close()  # type: ignore[union-attr]
            return None
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    raise RuntimeError("kakehashi serve did not start listening")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    proc = _start([APP], port) or _start([], port)  # the interim serve takes no APP
    if proc is None:
        raise RuntimeError("kakehashi serve exited at once")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def test_hello_world(server: str) -> None:
    r = client.get(server + "/")
    assert (r.status, r.body) == (200, b"Hello, World")
    assert r.headers["content-type"].startswith("text/plain")


def test_greeting_with_a_non_ascii_name(server: str) -> None:
    r = client.get(server + "/greeting/太郎")
    assert (r.status, r.text) == (200, "Hello, 太郎!")


def test_not_found(server: str) -> None:
    assert client.get(server + "/no/such/page").status == 404


def test_head_has_no_body(server: str) -> None:
    r = client.head(server + "/")
    assert (r.status, r.body) == (200, b"")


def test_the_client_reuses_exactly_when_the_server_allows(server: str) -> None:
    with Client(timeout=5) as c:
        rs = [c.get(server + "/") for _ in range(4)]
    assert all(r.body == b"Hello, World" for r in rs)
    keeps = [
        r.http_version == "1.1" and "close" not in r.headers.get("connection", "").lower()
        for r in rs
    ]
    assert [r.reused for r in rs[1:]] == keeps[:-1]
    assert c.transport.connections_opened == 1 + keeps[:-1].count(False)


def _cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "kakehashi", *argv], capture_output=True, env=env, timeout=30
    )


def test_kakehashi_get_prints_the_body(server: str) -> None:
    done = _cli("get", server + "/greeting/kakehashi")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"Hello, kakehashi!", b"")


def test_kakehashi_get_fail_on_404(server: str) -> None:
    assert _cli("get", "--fail", server + "/nope").returncode == 1


def test_kakehashi_send_garbage_gets_a_400(server: str) -> None:
    address = server.removeprefix("http://")
    done = _cli("send", address, "--text", "this is not http\\r\\n\\r\\n", "--wait", "2")
    assert done.returncode == 0
    # The interim wsgiref server answers a line that is not HTTP/1.x the HTTP/0.9 way (a bare
    # HTML page, no status line); the real server answers "HTTP/1.1 400 Bad Request".
    assert b"400" in done.stdout.split(b"\n", 1)[0] or b"400 - Bad request" in done.stdout


def test_kakehashi_send_nothing_ends_within_its_wait(server: str) -> None:
    address = server.removeprefix("http://")
    start = time.monotonic()
    done = _cli("send", address, "--nothing", "--wait", "0.5", "-t")
    assert done.returncode == 0 and time.monotonic() - start < 10
    assert b"connected to" in done.stderr
