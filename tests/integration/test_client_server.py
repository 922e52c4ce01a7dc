"""The client against kakehashi's own server, run as ``python -m kakehashi serve APP --bind``.

The tutorial's routes (``/`` and ``/greeting/<name>``) plus ``/stream``, a body of unknown
length that the server must send chunked.
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
from tests.integration.daemons import stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.tutorial_app:app"


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes] | None:
    """Start the server; None when it exited at once."""
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
    stop(proc)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    proc = _start([APP], port)
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


def test_four_requests_share_one_kept_alive_connection(server: str) -> None:
    with Client(timeout=5) as c:
        rs = [c.get(server + "/") for _ in range(4)]
    assert all(r.body == b"Hello, World" and r.http_version == "1.1" for r in rs)
    assert [r.reused for r in rs] == [False, True, True, True]
    assert c.transport.connections_opened == 1


def test_a_body_of_unknown_length_arrives_chunked_and_whole(server: str) -> None:
    r = client.get(server + "/stream")
    assert r.headers.get("transfer-encoding") == "chunked"
    assert r.body == b"".join(b"line %d\n" % i for i in range(100))


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
    assert done.stdout.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_kakehashi_send_two_pipelined_requests_gets_two_answers_in_order(server: str) -> None:
    address = server.removeprefix("http://")
    text = "GET /greeting/one HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
    text += "GET /greeting/two HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"
    done = _cli("send", address, "--text", text, "--wait", "2")
    assert done.returncode == 0
    assert done.stdout.count(b"HTTP/1.1 200 OK") == 2
    assert done.stdout.index(b"Hello, one!") < done.stdout.index(b"Hello, two!")


def test_kakehashi_send_nothing_ends_within_its_wait(server: str) -> None:
    address = server.removeprefix("http://")
    start = time.monotonic()
    done = _cli("send", address, "--nothing", "--wait", "0.5", "-t")
    assert done.returncode == 0 and time.monotonic() - start < 10
    assert b"connected to" in done.stderr
