"""One pre-fork worker process: boot, serve, heartbeat, and report to the arbiter.

Runs in the child after ``fork()`` and never returns (``os._exit``).  The worker talks to
its parent through one pipe, one short line per message (each write is below PIPE_BUF, so
atomic): ``ready`` once it accepts connections, ``beat`` every tick while it is healthy,
``recycle N`` once it served its ``--max-requests``, ``changed PATH`` when a watched file
changed (``--reload``), ``stuck TEXT`` when the engine says what is stuck (every thread, or
the event loop) with no progress for ``--timeout``, and ``error CODE TEXT`` when it cannot
boot.  With ``--reload``, a worker that cannot import the application sends ``waiting TEXT``
and stays, watching the files involved, until one changes: then it sends ``retry PATH`` and
exits, and the arbiter starts another.

Signals, once it serves: SIGTERM and SIGINT drain (the service stops), SIGUSR2 drains because
a replacement takes over (a rolling reload, ``--max-requests``, ``--reload``: the engine is
told ``restart``, and open WebSockets get 1012 instead of 1001), SIGQUIT exits at once, and
SIGUSR1 reopens the log files.

A heartbeat thread sends the beats.  It also watches the parent: Linux delivers SIGTERM
when the parent dies (``PR_SET_PDEATHSIG``), and elsewhere the parent-pid check at each tick
does it, so a worker never outlives its arbiter holding the port.  ``faulthandler`` is
enabled, so the SIGABRT that the arbiter sends a stuck worker dumps every thread's stack to
stderr even when a C extension holds the GIL.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import functools
import os
import random
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from kakehashi.errors import AppImportError, ConfigError, KakehashiError
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.engine.contract import Engine, EngineFactory, shutdown_after_delay
from kakehashi.server.engine.heap import when_ready
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.metrics import Recorder
from kakehashi.server.process.reloader import FileWatcher, files_of, format_import_error

__all__ = [
    "WorkerHooks",
    "WorkerSpec",
    "run_worker",
    "set_parent_death_signal",
]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class WorkerHooks:
    """What the command line gives the process manager: how to import the application, the
    engine to serve it with, how to reopen its log files, and how to read the configuration
    again on SIGHUP."""

    load_app: Callable[[], Any]
    engine: EngineFactory  # the engine that serves the app (the CLI picks it)
    reopen_logs: Callable[[], object] = lambda: None
    reload_config: Callable[[], ServerConfig] | None = None


@dataclass
class WorkerSpec:
    """Everything one worker needs, fixed at fork time."""

    config: ServerConfig
    sockets: list[socket.socket]
    hooks: WorkerHooks
    parent_pid: int
    pipe: int  # the write end of this worker's pipe to the arbiter
    app: Any = None  # preloaded in the parent (--preload)
    close_fds: list[int] = field(default_factory=list)  # the parent's, not ours
    metrics: Recorder | None = None  # this worker's slot of the parent's --metrics-bind


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` when the parent exits; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class _Report:
    """The write end of the pipe to the arbiter; a full pipe drops a beat, never blocks."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    def send(self, line: str) -> None:
        data = (line.replace("\n", " ")[:500] + "\n").encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            os.write(self.fd, data)


class _Heartbeat:
    """The worker's heartbeat thread (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, report: _Report) -> None:
        self.spec = spec
        self.report = report
        self.engine: Engine | None = None
        self.stop = threading.Event()
        timeout = spec.config.timeout
        self.tick = min(1.0, timeout / 4) if timeout else 1.0
        config = spec.config
        jitter = random.randint(0, config.max_requests_jitter) if config.max_requests else 0
        self.max_requests = config.max_requests + jitter
        self._recycle_asked = False
        self._stuck_told = False
        self.watcher: FileWatcher | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="kakehashi-heartbeat", daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(self.tick):
            if os.getppid() != self.spec.parent_pid:
                error_logger.warning("worker %d: the arbiter is gone; shutting down", os.getpid())
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self._beat()

    def _beat(self) -> None:
        engine = self.engine
        if engine is None:  # still importing the application
            self.report.send("beat")
            return
        stuck = engine.stuck(self.spec.config.timeout)
        if stuck:
            if not self._stuck_told:
                self._stuck_told = True
                self.report.send(f"stuck {stuck}")
            return
        self._stuck_told = False
        self.report.send("beat")
        changed = self.watcher.changed() if self.watcher is not None else None
        if changed:
            self.report.send(f"changed {changed}")
        started = engine.requests_started()
        if self.max_requests and not self._recycle_asked and started >= self.max_requests:
            self._recycle_asked = True
            self.report.send(f"recycle {started}")


def run_worker(spec: WorkerSpec) -> NoReturn:
    """The child's whole life after ``fork()``: serve until told to stop, then exit."""
    code = 1
    try:
        code = _serve(spec)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code)


def _reset_inherited(spec: WorkerSpec) -> None:
    """Drop what the child inherited from the arbiter: its signal handlers and its fds."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    # The arbiter's business, not ours (SIGUSR1 and SIGUSR2 get their handlers once the
    # worker serves).
    for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    for fd in spec.close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    # The arbiter blocked signals around fork(); what arrived meanwhile is delivered now,
    # to the default handlers (a SIGTERM ends a worker that is still booting).
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _serve(spec: WorkerSpec) -> int:
    _reset_inherited(spec)
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != spec.parent_pid:  # the parent died before prctl took effect
        return 0
    if sys.stderr is not None:  # where --timeout's SIGABRT dumps every thread's stack
        faulthandler.enable(file=sys.stderr, all_threads=True)
    report = _Report(spec.pipe)
    heartbeat = _Heartbeat(spec, report)
    try:
        heartbeat.start()
    except RuntimeError as exc:  # no thread can be started (a process or memory limit)
        report.send(f"error 1 cannot start the heartbeat thread: {exc}")
        return 1
    try:
        app = spec.app if spec.app is not None else spec.hooks.load_app()
    except ConfigError as exc:
        if exc.__cause__ is not None:  # the application's own failure: where it happened
            error_logger.error("worker %d: %s\n%s", os.getpid(), exc,
                               format_import_error(exc.__cause__).rstrip())  # fmt: skip
        if spec.config.reload and isinstance(exc, AppImportError):
            return _wait_for_a_fix(spec, heartbeat, exc)
        report.send(f"error 2 {exc}")
        return 2
    except Exception as exc:
        report.send(f"error 1 {exc!r}")
        raise
    try:  # the engine of the application's kind (the CLI's factory tells it)
        server = spec.hooks.engine(
            app, spec.config, sockets=spec.sockets, shared_listeners=True, metrics=spec.metrics
        )
    except ConfigError as exc:  # neither WSGI nor ASGI, or --loop uvloop not installed
        report.send(f"error 2 {exc}")
        return 2
    _install_signals(server, spec.hooks)
    if spec.config.reload:
        heartbeat.watcher = FileWatcher(spec.config.reload_extra_file)
    heartbeat.engine = server
    # Ready when the engine says so, before it can serve a request (a worker that served one
    # and then died was ready: it is replaced, not counted as a failed boot) and after an
    # ASGI application's lifespan startup (one that refuses to start is a failed boot,
    # retried, then given up).  Connections wait in the kernel's queue meanwhile.
    try:
        server.start(on_ready=when_ready(server, lambda: report.send("ready")))
    except (RuntimeError, KakehashiError) as exc:  # no thread can start; a lifespan refusal
        report.send(f"error 1 cannot start serving: {exc}")
        return 1
    server.serve_forever()
    heartbeat.stop.set()
    return 0


def _wait_for_a_fix(spec: WorkerSpec, heartbeat: _Heartbeat, exc: AppImportError) -> int:
    """``--reload`` and the application cannot be imported: wait until a file of its
    traceback (or a module imported so far) changes, then ask to be replaced by a fresh
    worker, which imports it again.  The arbiter's SIGTERM ends the wait (default action)."""
    watcher = FileWatcher((*spec.config.reload_extra_file, *files_of(exc)))
    heartbeat.report.send(f"waiting {exc}")
    while not heartbeat.stop.wait(heartbeat.tick):
        changed = watcher.changed()
        if changed:
            heartbeat.report.send(f"retry {changed}")
            return 0
    return 0


def _install_signals(server: Engine, hooks: WorkerHooks) -> None:
    asked: list[int] = []

    # The handlers take no lock (they may interrupt the main thread holding one): they
    # hand their work to the main thread (Server.call_soon).
    def stop(signum: int, frame: object) -> None:
        asked_before = bool(asked)
        asked.append(signum)
        restart = signum == signal.SIGUSR2  # the arbiter's "a replacement takes over"
        server.call_soon(functools.partial(shutdown_after_delay, server, asked_before, restart))

    def quit_now(signum: int, frame: object) -> None:
        os._exit(0)

    def reopen(signum: int, frame: object) -> None:
        server.call_soon(hooks.reopen_logs)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR2, stop)
    signal.signal(signal.SIGQUIT, quit_now)
    signal.signal(signal.SIGUSR1, reopen)
