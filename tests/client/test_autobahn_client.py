"""Autobahn|Testsuite's fuzzingserver against ``kakehashi.client.websocket``: cases 1 to 13,
compression included, 0 FAILED and every close clean (OK or INFORMATIONAL).

The suite is Python 2 only; ``tools/autobahn.sh`` installs it (pinned) into ``.venvs/autobahn``
from the Python 2.7 pyenv provides, and this test skips where that Python is missing.  It is
slow: which cases run by default, and how to run all 517, is in tests/autobahn_cases.py.
Select the test with ``-m autobahn`` or leave it out with ``-m "not autobahn"``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.client import websocket
from kakehashi.errors import TransportError, WebSocketError
from kakehashi.websocket import DeflateSettings
from tests.autobahn_cases import AGENT, CASES, MARKS, SCRIPT, grade
from tests.client.servers import free_port

# Offer what browsers offer (no window asked for, client_max_window_bits without a value), so
# that every parameter set of cases 13.x can be answered.
OFFER = DeflateSettings(server_max_window_bits=None, client_max_window_bits=None)

pytestmark = MARKS


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the fuzzingserver exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("the fuzzingserver did not listen within 60 s")


@pytest.fixture(scope="module")
def fuzzingserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The fuzzingserver on 127.0.0.1; yields its URL and the report directory."""
    subprocess.run(["bash", str(SCRIPT), "install"], check=True, timeout=900)
    work = tmp_path_factory.mktemp("autobahn")
    port = free_port()
    spec = work / "fuzzingserver.json"
    spec.write_text(
        json.dumps(
            {
                "url": f"ws://127.0.0.1:{port}",
                "outdir": str(work / "reports"),
                "cases": CASES,
                "exclude-cases": [],
                "exclude-agent-cases": {},
            }
        )
    )
    log = work / "fuzzingserver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "fuzzingserver", str(spec)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"ws://127.0.0.1:{port}", work / "reports"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _echo_case(base: str, case: int) -> None:
    """One case: echo every message until the fuzzingserver closes."""
    url = f"{base}/runCase?case={case}&agent={AGENT}"
    try:
        with websocket.connect(url, compression=OFFER, ping_interval=None, timeout=30) as sock:
            for _ in range(1_000_000):  # bounded: case 12/13 send at most 1000 messages
                sock.send(sock.recv(timeout=120))
    except (WebSocketError, TransportError):
        pass  # how the case ended is what the report judges


def _run_all(base: str) -> int:
    with websocket.connect(f"{base}/getCaseCount", timeout=30) as sock:
        count = int(sock.recv(timeout=30))
    for case in range(1, count + 1):
        _echo_case(base, case)
    with (
        websocket.connect(f"{base}/updateReports?agent={AGENT}", timeout=300) as sock,
        pytest.raises(WebSocketError),
    ):  # the server closes once the reports are written
        sock.recv(timeout=300)
    return count


def test_fuzzingserver_cases_pass(fuzzingserver: tuple[str, Path]) -> None:
    base, reports = fuzzingserver
    start = time.monotonic()
    count = _run_all(base)
    elapsed = time.monotonic() - start
    results = json.loads((reports / "index.json").read_text())[AGENT]
    assert len(results) == count > 0
    assert grade(results, elapsed) == []
