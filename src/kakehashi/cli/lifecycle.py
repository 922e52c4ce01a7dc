"""The process side of ``kakehashi serve``: pid file, log reopening, signals, and which of
the two ways it runs (one process, or the arbiter over pre-fork workers).

With one worker and nothing that needs a manager, the server runs in this process: SIGINT or
SIGTERM asks for a graceful shutdown, a second SIGINT (or SIGQUIT) forces the exit, SIGUSR1
reopens the log files and SIGHUP is refused with a log line (a reload needs the manager).
Otherwise the arbiter (kakehashi.server.process.arbiter) installs its own handlers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.engine.contract import Engine, shutdown_after_delay
from kakehashi.server.engine.heap import when_ready
from kakehashi.server.net.systemd import notify
from kakehashi.server.observe.logfile import LogFileHandler, reopen_log_files

__all__ = ["PidFile", "needs_manager", "reopen_logs", "serve_in_process"]

log = logging.getLogger("kakehashi.error")
_SIGQUIT = getattr(signal, "SIGQUIT", None)  # not on Windows
_INTERRUPTS = {signal.SIGINT, getattr(signal, "SIGBREAK", signal.SIGINT)}  # Ctrl-C, Ctrl-Break


def needs_manager(config: ServerConfig) -> bool:
    """True when the settings call for the arbiter (several workers, recycling or reloading
    them)."""
    return config.workers > 1 or config.max_requests > 0 or config.reload


def reopen_logs() -> int:
    """Reopen every log file kakehashi's loggers write to (logrotate moved them): SIGUSR1.
    Lines the access log still queues go to the old file first (server/observe/logfile.py).

    Returns how many files were reopened.
    """
    names = [name for name in logging.Logger.manager.loggerDict if name.startswith("kakehashi")]
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in names)]
    count = sum(
        isinstance(handler, logging.FileHandler | LogFileHandler)
        for logger in loggers
        for handler in logger.handlers
    )
    reopen_log_files()
    return count


class PidFile:
    """``--pid FILE``: the server's pid, written once listening and removed on exit."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self.pid = os.getpid()

    def write(self) -> None:
        """Raises ConfigError when the file cannot be written."""
        if self.path is None:
            return
        try:
            self.path.write_text(f"{self.pid}\n", encoding="ascii")
        except OSError as exc:
            raise ConfigError(f"cannot write --pid {self.path}: {exc.strerror or exc}") from exc

    def remove(self) -> None:
        # Only ours: a forked worker, or a new server that took the file over, keeps it.
        if self.path is None or os.getpid() != self.pid:
            return
        with contextlib.suppress(OSError, ValueError):
            if int(self.path.read_text(encoding="ascii")) == self.pid:
                self.path.unlink()


def serve_in_process(server: Engine) -> int:
    """Run ``server`` in this process until a signal stops it; returns the exit code."""
    previous = _install_signals(server)
    try:
        server.start(on_ready=when_ready(server))
        notify("READY=1\nSTATUS=serving")
        server.serve_forever()
        return 0
    except KeyboardInterrupt:
        log.warning("forced exit")
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_gracefully(server: Engine, signum: int, asked_before: bool) -> None:
    log.info("%s: shutting down gracefully", signal.Signals(signum).name)
    notify("STOPPING=1")
    shutdown_after_delay(server, asked_before)


def _install_signals(server: Engine) -> dict[int, Any]:
    """First SIGINT/SIGTERM: graceful shutdown.  A second SIGINT, or SIGQUIT: forced exit."""
    asked: list[int] = []

    # The handlers take no lock (logging, Event.set and starting a thread all do, and the
    # main thread may hold one when the signal comes): they hand their work to the main
    # thread (Server.call_soon).  Raising KeyboardInterrupt, the forced exit, takes none.
    def stop(signum: int, frame: object) -> None:
        if signum == _SIGQUIT or (asked and signum in _INTERRUPTS):
            raise KeyboardInterrupt
        asked_before = bool(asked)
        asked.append(signum)
        server.call_soon(lambda: _stop_gracefully(server, signum, asked_before))

    def reopen(signum: int, frame: object) -> None:
        server.call_soon(lambda: log.info("SIGUSR1: reopened %d log file(s)", reopen_logs()))

    def refuse_reload(signum: int, frame: object) -> None:
        server.call_soon(
            lambda: log.warning("SIGHUP ignored: a rolling reload needs --workers 2 or more")
        )

    # POSIX names are looked up, so that Windows gets what it has: Ctrl-C (SIGINT) and
    # Ctrl-Break (SIGBREAK) stop gracefully there, a second one forces the exit.
    handlers = {
        "SIGINT": stop,
        "SIGTERM": stop,
        "SIGBREAK": stop,
        "SIGQUIT": stop,
        "SIGUSR1": reopen,
        "SIGHUP": refuse_reload,
    }
    return {
        getattr(signal, name): signal.signal(getattr(signal, name), handler)
        for name, handler in handlers.items()
        if hasattr(signal, name)
    }
