"""A real browser against the demo served by ``python -m kakehashi serve``.

Headless Chromium (Debian's ``chromium``) loads the pages from its address bar, as a newcomer
would, and we read the text it shows with ``--dump-dom``.  Whatever server ``kakehashi serve``
runs, these tests must pass, including after a browser's speculative connections that send
nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kakehashi serve exited with {process.returncode}")
        try:
            # Closed at once, so even a single-threaded server is not held up by the probe.
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kakehashi", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_listening(port, process, time.monotonic() + 15)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class _BodyText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.in_body = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_body = self.in_body or tag == "body"

    def handle_data(self, data: str) -> None:
        if self.in_body:
            self.parts.append(data)


def shown_text(url: str, profile: Path, timeout: float = 30) -> str:
    """The text Chromium shows for ``url`` typed in its address bar."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    # Own session, so that on a timeout the whole browser (helpers included) can be stopped.
    browser = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = browser.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        browser.wait(timeout=10)
        if browser.stdout is not None:
            browser.stdout.close()
    parser = _BodyText()
    parser.feed(out.decode("utf-8"))
    return "".join(parser.parts).strip()


def test_root_in_a_browser(server: str, tmp_path: Path) -> None:
    assert shown_text(f"{server}/", tmp_path / "profile") == "Hello, World"


def test_unicode_greeting_in_a_browser(server: str, tmp_path: Path) -> None:
    # Typed as Unicode: Chromium percent-encodes it as UTF-8 on the wire.
    assert shown_text(f"{server}/greeting/太郎", tmp_path / "profile") == "Hello, 太郎!"


def test_unknown_page_in_a_browser(server: str, tmp_path: Path) -> None:
    # The interim server says "Not Found", the framework's page "404 Not Found".
    assert "Not Found" in shown_text(f"{server}/nowhere", tmp_path / "profile")


def test_page_loads_at_once_despite_silent_connections(server: str, tmp_path: Path) -> None:
    port = int(server.rsplit(":", 1)[1])
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
    try:
        started = time.monotonic()
        try:
            text = shown_text(f"{server}/greeting/太郎", tmp_path / "profile", timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("the page did not load while speculative connections were open")
        elapsed = time.monotonic() - started
    finally:
        for connection in silent:
            connection.close()
    assert text == "Hello, 太郎!"
    assert elapsed < 10, f"took {elapsed:.1f}s"
