"""Pre-fork workers: one parent that binds, N child processes that each run a Server.

The parent never runs the application.  It binds the listening sockets, forks the workers
(which inherit them; the kernel spreads new connections across the processes waiting in
accept), restarts a worker that dies, and on shutdown forwards SIGTERM and waits for the
workers' graceful exit, killing any that outlive the grace period.  POSIX only.

Installs signal handlers only in the children it forks (the parent's are the CLI's).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from kakehashi.server.config import ServerConfig
from kakehashi.server.context import error_logger
from kakehashi.server.metrics_http import ParentMetrics
from kakehashi.server.server import Server
from kakehashi.wsgi import WSGIApp

__all__ = ["Supervisor"]

_RESTART_DELAY = 0.5  # seconds between restarts, so a crashing app cannot fork-bomb


class Supervisor:
    """Runs ``config.workers`` worker processes over shared listening sockets."""

    def __init__(self, app: WSGIApp, config: ServerConfig, sockets: list[socket.socket]) -> None:
        self.app = app
        self.config = config
        self.sockets = sockets
        self.children: set[int] = set()
        self._stop = threading.Event()
        self.metrics = ParentMetrics.create(config)  # binds --metrics-bind, before any fork

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to stop; safe from signal handlers."""
        self._stop.set()

    def run(self) -> int:
        """Fork the workers and watch them until shutdown; returns an exit code."""
        if self.metrics is not None:
            self.metrics.listener.start()
        for _ in range(self.config.workers):
            self._spawn()
        while not self._stop.is_set():
            self._reap(restart=True)
            self._stop.wait(_RESTART_DELAY)
        code = self._stop_children()
        if self.metrics is not None:
            self.metrics.listener.close()
        return code

    def _spawn(self) -> None:
        slot = self.metrics.slots.reserve() if self.metrics is not None else None
        pid = os.fork()
        if pid:
            self.children.add(pid)
            if self.metrics is not None:
                self.metrics.slots.spawned(pid, slot)
            return
        code = 1
        try:  # in the child: serve until SIGTERM/SIGINT, then exit without returning
            recorder = self.metrics.in_child(slot) if self.metrics is not None else None
            server = Server(self.app, self.config, sockets=self.sockets, metrics=recorder)

            def stop(signum: int, frame: object) -> None:
                server.request_shutdown()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            server.serve_forever()
            code = 0
        finally:
            os._exit(code)

    def _reap(self, restart: bool) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                self.children.discard(pid)
                replaced = restart and not self._stop.is_set()
                if self.metrics is not None:  # its counts join the retired total
                    self.metrics.slots.retire(pid, replaced=replaced)
                if replaced:
                    error_logger.warning(
                        "worker %d exited (status %d); starting another", pid, status
                    )
                    self._spawn()

    def _stop_children(self) -> int:
        for pid in self.children:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.graceful_timeout + 1.0
        while self.children and time.monotonic() < deadline:
            self._reap(restart=False)
            time.sleep(0.05)
        for pid in self.children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        return 0
