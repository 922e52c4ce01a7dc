"""Signal handlers take no lock: they hand their work to the thread in serve_forever.

A handler runs on the main thread between two of its bytecodes.  Anything it does that takes
a lock (Event.set, logging, a log file's write lock, starting a thread) waits forever if the
main thread held that lock when the signal came: a pre-fork worker hung so on a SIGTERM that
arrived as it entered serve_forever (Event.wait holds the Event's lock for a moment).  These
tests send real signals to this process, whose main thread runs the tests.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cli import lifecycle
from kakehashi.server import Server, ServerConfig
from kakehashi.server.observe.logfile import LogFileHandler
from kakehashi.server.process.worker import WorkerHooks, _install_signals
from kakehashi.server.threads.server import managed_server
from tests.conftest import hello_app

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals"),
]


@pytest.fixture
def server() -> Iterator[Server]:
    """A started server with the CLI's signal handlers installed, restored afterwards."""
    server = Server(hello_app, ServerConfig(bind=("127.0.0.1:0",), threads=1))
    previous = lifecycle._install_signals(server)
    try:
        server.start()
        yield server
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.shutdown(timeout=2.0)


def test_sigterm_is_handled_by_the_serving_thread(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")

    def said() -> bool:
        return any("shutting down gracefully" in r.getMessage() for r in caplog.records)

    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, on this thread, at once
    assert not said() and not server.ctx.stopping  # it only asked: no logging in a handler
    server.serve_forever()  # returns: the line and the shutdown came from here
    assert said() and server.ctx.stopping


def test_sigusr1_while_this_thread_holds_the_logs_lock(server: Server, tmp_path: Path) -> None:
    access = logging.getLogger("kakehashi.access")
    path = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(path))
    access.addHandler(handler)
    try:
        # The main thread holding the handler's lock (as while it queues lines): a reopen
        # made inside the signal handler would wait for this very lock, forever.
        with handler._lock:
            os.kill(os.getpid(), signal.SIGUSR1)
        path.rename(tmp_path / "access.log.1")  # what logrotate does before the signal
        server.request_shutdown()
        server.serve_forever()  # runs the reopen, then shuts down
        assert path.exists()  # reopened at its path: a new file
    finally:
        access.removeHandler(handler)
        handler.close()


def test_a_workers_handlers_hand_over_too() -> None:
    # A pre-fork worker's own handlers (SIGTERM, SIGUSR1), in this process: they only queue.
    reopened: list[bool] = []
    server = Server(hello_app, ServerConfig(bind=("127.0.0.1:0",), threads=1))
    hooks = WorkerHooks(
        load_app=lambda: hello_app, engine=managed_server, reopen_logs=lambda: reopened.append(True)
    )
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    previous[signal.SIGQUIT] = signal.getsignal(signal.SIGQUIT)
    _install_signals(server, hooks)
    try:
        server.start()
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        assert not reopened and not server.ctx.stopping  # nothing done in the handlers
        server.serve_forever()
        assert reopened == [True] and server.ctx.stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.shutdown(timeout=2.0)
