"""Shared fixtures: an in-process kakehashi Server on 127.0.0.1:0, and a ``kakehashi serve``
subprocess runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.server import Server, ServerConfig

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# KAKEHASHI_TEST_POLLER=portable runs every server the suite starts on the portable poller
# (in-process and ``kakehashi serve`` subprocesses alike); CI runs the suite both ways.
TEST_POLLER = os.environ.get("KAKEHASHI_TEST_POLLER", "auto")


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as in a terminal, however the suite was launched.  A shell starts a background
    job (``cmd &``, nohup, some CI runners) with SIGINT ignored, and its children inherit
    that: Python then installs no KeyboardInterrupt handler, so the tests that stop
    ``serve()`` or ``app.run()`` with SIGINT (a user's Ctrl-C) waited for nothing.  A
    handler set here is reset to the default in each child at exec, as a terminal's is."""
    if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = b"Hello, World"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [body]


def kakehashi_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kakehashi")]


StartServer = Callable[..., Server]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(app, **config)``: a started Server on 127.0.0.1:0 (accepting on return).

    Teardown shuts every server down and checks that none of its threads leaked.
    """
    servers: list[Server] = []

    def start(app: Any = hello_app, **settings: Any) -> Server:
        settings.setdefault("bind", ("127.0.0.1:0",))
        settings.setdefault("threads", 4)
        settings.setdefault("poller", TEST_POLLER)
        server = Server(app, ServerConfig(**settings))
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.shutdown(timeout=2)
    assert not kakehashi_threads(), f"leaked threads: {kakehashi_threads()}"


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI twin of :func:`hello_app` (no lifespan support: it ignores other scopes)."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, World"})


# The engines a test parametrized by ``engine`` runs on: the thread engine, and the asyncio
# engine on each loop (uvloop where installed: it is in the test extra).
ENGINES = ["threads", "asyncio", "uvloop"]


@pytest.fixture
def start_asgi() -> Iterator[Callable[..., Any]]:
    """``start_asgi(app, loop="asyncio", **config)``: an AsyncServer on 127.0.0.1:0 serving
    on a thread of its own (accepting on return); shut down and checked for leaked threads
    at teardown."""
    from kakehashi.server.aio import AsyncServer

    servers: list[AsyncServer] = []

    def start(app: Any = asgi_hello, loop: str = "asyncio", **settings: Any) -> AsyncServer:
        settings.setdefault("bind", ("127.0.0.1:0",))
        server = AsyncServer(app, ServerConfig(loop=loop, **settings))
        servers.append(server)
        server.run_in_thread()
        return server

    yield start
    for server in servers:
        server.shutdown(timeout=2)
    ours = [t for t in kakehashi_threads() if t.name in ("kakehashi-aio-loop",
                                                          "kakehashi-loop-watchdog")]  # fmt: skip
    assert not ours, f"leaked threads: {ours}"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_engine(
    engine: str, start_server: StartServer, start_asgi: Callable[..., Any]
) -> Callable[..., Any]:
    """``start_engine(wsgi_app, asgi_app, **config)``: the same server settings on the
    engine under test, with the application of its kind."""

    def start(wsgi: Any = hello_app, asgi: Any = asgi_hello, **settings: Any) -> Any:
        if engine == "threads":
            return start_server(wsgi, **settings)
        return start_asgi(asgi, loop=engine, **settings)

    return start


@pytest.fixture
def server(start_server: StartServer) -> Server:
    """A server running :func:`hello_app`."""
    return start_server()


def addr(server: Any) -> str:
    return server.addresses[0]


class ServeProcess:
    """``python -m kakehashi serve ...`` in a subprocess, with its stderr collected;
    ``command`` replaces ``-m kakehashi serve`` (``()`` runs a script given in ``args``)."""

    def __init__(
        self,
        args: list[str],
        cwd: Path | None = None,
        command: tuple[str, ...] = ("-m", "kakehashi", "serve"),
    ) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))
        env["PYTHONUNBUFFERED"] = "1"
        if TEST_POLLER != "auto" and not any("asgi" in arg for arg in args):
            # The pollers are the thread engine's: a process serving one of the suite's ASGI
            # apps (tests.asgi_apps, tests.asgi_frameworks, --interface asgi) would rightly
            # say that --poller means nothing to it, which tests of its output do not expect.
            env.setdefault("KAKEHASHI_POLLER", TEST_POLLER)
        self.proc = subprocess.Popen(
            [sys.executable, *command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or ROOT,
            env=env,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="test-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr:
                return True
            if self.proc.poll() is not None:
                self._reader.join(2)
                return text in self.stderr
            time.sleep(0.02)
        return False

    def address(self, timeout: float = 10.0) -> str:
        """The first bound address from the startup banner."""
        assert self.wait_for(" on ", timeout), self.stderr
        for line in list(self.lines):
            if " serving " in line and " on " in line:
                where = line.rsplit(" on ", 1)[1].strip()
                return where.removeprefix("http://").removeprefix("https://").rstrip("/")
        raise AssertionError(self.stderr)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(2)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._reader.join(2)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """``serve_process(*args)``: a ``kakehashi serve`` subprocess, killed (by PID) at teardown."""
    procs: list[ServeProcess] = []

    def run(*args: str, cwd: Path | None = None) -> ServeProcess:
        proc = ServeProcess(list(args), cwd)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        proc.stop()
