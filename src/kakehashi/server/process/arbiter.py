"""The process manager: one parent that owns the listening sockets and N worker processes.

The parent (the arbiter) never runs the application and never closes the listening sockets;
the workers inherit them, and the kernel spreads new connections over the processes waiting
in accept.  The arbiter is one loop in the main thread: signal handlers only record the
signal (and wake the loop through ``signal.set_wakeup_fd``), and the loop reads the workers'
pipes (worker.py lists the messages), reaps children and keeps the pool as configured.
With ``--reload``, a worker that cannot import the application waits for a file to change
and is then replaced, however long that takes: it is no boot failure.

Signals (gunicorn's meanings): SIGTERM/SIGINT drain every worker and exit (a second SIGINT,
or SIGQUIT, stops them at once); SIGHUP re-reads the configuration and replaces every worker
one at a time; SIGTTIN/SIGTTOU add or remove a worker; SIGUSR1 reopens the log files here
and in every worker.

Replacing a worker (SIGHUP, ``--max-requests``, or one that died) is rolling: start the new
worker, wait for its ``ready`` on the pipe, and only then ask the old one to drain, one
replacement at a time, so the pool never serves with fewer processes than asked for.

To a worker, SIGTERM means "drain, the service stops" and SIGUSR2 "drain, a replacement
took over" (SIGHUP, ``--max-requests``, ``--reload``): the same drain, but the asyncio engine
closes open WebSockets with 1012 (service restart: come back) instead of 1001 (going away).
SIGUSR2, because the worker has no other use for it (gunicorn's workers give it no meaning
either); not SIGHUP, because a terminal's hangup reaches the whole process group and would
drain every worker at once.  A worker removed without a successor (SIGTTOU) gets SIGTERM,
and so does one not ready yet, whose handlers are not installed (the default action ends
it).

POSIX only; forks only from the main thread, so PR_SET_PDEATHSIG follows the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.net.systemd import notify
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.observe.metrics_http import ParentMetrics
from kakehashi.server.process.worker import WorkerHooks, WorkerSpec, run_worker

__all__ = ["Arbiter"]

BOOT_FAILURES = 5  # quick failures in a row before giving up (exit 1)
_MOST_WORKERS: int = next(
    f.metadata["most"] for f in dataclasses.fields(ServerConfig) if f.name == "workers"
)
_TICK = 0.25
_KILL_AFTER_ABORT = 1.0  # seconds a SIGABRT'ed worker gets to dump its stacks
# POSIX signals; getattr so that the module imports where they are missing (Windows), where
# the process manager is refused anyway (config.py: it needs fork).
_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGTERM",
        "SIGINT",
        "SIGQUIT",
        "SIGHUP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGUSR1",
        "SIGUSR2",  # only to be refused in words: its default action would end the arbiter
        "SIGCHLD",
    )
    if hasattr(signal, name)
)


@dataclass
class _Worker:
    """The arbiter's record of one child; owned by the arbiter's loop."""

    pid: int
    fd: int  # the read end of its pipe
    born: float
    last_beat: float
    ready: bool = False
    replaces: int = 0  # the pid this worker is to replace once ready
    stopping_since: float = 0.0  # when it was asked to drain (0: serving)
    aborted_since: float = 0.0
    error: str = ""
    error_code: int = 1
    retry: bool = False  # --reload: it could not import the application, and a file changed
    pending: bytes = b""


class Arbiter:
    """Runs ``config.workers`` worker processes over the given listening sockets."""

    def __init__(
        self,
        config: ServerConfig,
        sockets: list[socket.socket],
        hooks: WorkerHooks,
        app: Any = None,
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.hooks = hooks
        self.app = app  # preloaded, or None: each worker imports it
        self.target = config.workers
        self.workers: dict[int, _Worker] = {}
        self.exit_code = 0
        self._stopping = 0.0  # when the shutdown began
        self._quick = False
        self._signals: list[int] = []
        self._queue: list[int] = []  # pids to replace, in order
        self._replacement: _Worker | None = None
        self._reloading = False
        self._ever_ready = False
        self._boot_failures = 0
        self._backoff_until = 0.0
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        # --metrics-bind: binds now, before any fork (ConfigError if it cannot).  A slot per
        # worker that can be alive at once: a reload's replacement, SIGTTIN's additions.
        room = min(2 * config.workers + 1, _MOST_WORKERS)
        self.metrics = ParentMetrics.create(config.replace(workers=room))

    # -- signals -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Runs between two bytecodes of the loop: record, and stop spawning at once.
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            quick = signum == signal.SIGQUIT or (signum == signal.SIGINT and self._stopping > 0)
            self._quick = self._quick or quick
            self._stopping = self._stopping or time.monotonic()
        self._signals.append(signum)

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to drain the workers and return; safe from signal handlers."""
        self._on_signal(signal.SIGTERM, None)

    def run(self) -> int:
        """Start the workers and manage them until shutdown; returns the exit code."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in _SIGNALS}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        if self.metrics is not None:
            self.metrics.listener.start()
        try:
            self._loop()
        finally:
            if self.metrics is not None:
                self.metrics.listener.close()
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)
        return self.exit_code

    def _loop(self) -> None:
        notified = False
        while True:
            self._handle_signals()
            self._reap()
            if self._stopping:
                if not self._stop_workers():
                    return
            else:
                self._check_health()
                self._maintain()
                if not notified and self._ever_ready and self._ready_count() >= self.target:
                    notified = True
                    notify(f"READY=1\nSTATUS=serving with {self.target} worker(s)")
            self._wait()

    def _wait(self) -> None:
        # poll, not select: no FD_SETSIZE limit however many workers and sockets there are.
        poller = select.poll()
        by_fd = {w.fd: w for w in self.workers.values()}
        for fd in (self._wake_r, *by_fd):
            poller.register(fd, select.POLLIN)
        try:
            events = poller.poll(_TICK * 1000)
        except InterruptedError:
            return
        for fd, _ in events:
            if fd == self._wake_r:
                with contextlib.suppress(OSError):
                    os.read(fd, 512)
            elif fd in by_fd:
                self._read(by_fd[fd])

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP and not self._stopping:
                error_logger.info("SIGHUP: replacing every worker, one at a time")
                self._reload(reread=self.hooks.reload_config is not None)
            elif signum == signal.SIGTTIN and not self._stopping:
                self.target = min(self.target + 1, _MOST_WORKERS)
                error_logger.info("SIGTTIN: %d worker(s)", self.target)
            elif signum == signal.SIGTTOU and not self._stopping:
                self.target = max(self.target - 1, 1)
                error_logger.info("SIGTTOU: %d worker(s)", self.target)
            elif signum == signal.SIGUSR1:
                self.hooks.reopen_logs()
                self._tell_all(signal.SIGUSR1)
            elif signum == signal.SIGUSR2:  # gunicorn's "upgrade the executable"
                error_logger.warning(
                    "SIGUSR2 ignored: kakehashi has no binary upgrade; SIGHUP replaces the "
                    "workers one at a time"
                )
            elif signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                how = "at once" if self._quick else "gracefully"
                error_logger.info("%s: shutting down %s", signal.Signals(signum).name, how)
                notify("STOPPING=1")

    # -- the pipes -----------------------------------------------------------------------------

    def _read(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        *lines, worker.pending = (worker.pending + data).split(b"\n")
        for line in lines:
            self._message(worker, line.decode("utf-8", "replace"))

    def _message(self, worker: _Worker, line: str) -> None:
        kind, _, rest = line.partition(" ")
        worker.last_beat = time.monotonic()
        if kind == "ready":
            self._on_ready(worker)
        elif kind == "recycle" and not worker.stopping_since:
            error_logger.info(
                "worker %d served %s requests (--max-requests); replacing it", worker.pid, rest
            )
            self._replace(worker.pid)
        elif kind == "changed" and not self._reloading:
            error_logger.info("%s changed (--reload)", rest)
            self._reload(reread=False)
        elif kind == "stuck":
            self._abort(worker, rest)  # the engine's own words: its threads, or its loop
        elif kind == "error":
            code, _, worker.error = rest.partition(" ")
            worker.error_code = int(code) if code.isdigit() else 1
        elif kind in ("waiting", "retry"):
            self._on_import_failure(worker, kind, rest)

    def _on_import_failure(self, worker: _Worker, kind: str, rest: str) -> None:
        """--reload, and a worker cannot import the application (worker.py).  A replacement
        is stopped: the old workers keep serving and watching.  Otherwise it waits for a fix,
        and once a file changed it exits and another one is started at once."""
        if kind == "waiting" and worker.replaces:
            worker.error, worker.error_code = rest, 2
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)  # reaped as a failed boot (_exited)
        elif kind == "waiting":
            error_logger.error("worker %d cannot import the application (%s); waiting for a "
                               "change to a file (--reload)", worker.pid, rest)  # fmt: skip
        else:
            worker.retry = True
            error_logger.info("%s changed (--reload); importing the application again", rest)

    def _on_ready(self, worker: _Worker) -> None:
        worker.ready = True
        self._ever_ready = True
        self._boot_failures = 0
        error_logger.info("worker %d ready", worker.pid)
        if worker.replaces:
            old = self.workers.get(worker.replaces)
            worker.replaces = 0
            self._replacement = None
            if old is not None:
                self._drain(old, replaced=True)
            if self._reloading and not self._queue:
                self._reload_over("done")

    # -- starting and stopping workers ---------------------------------------------------------

    def _spawn(self, replaces: int = 0) -> _Worker | None:
        read_end, write_end = os.pipe()
        # Signals wait until the child has dropped our handlers (a SIGTERM caught by a copy
        # of the arbiter's handler would be lost, and the worker would serve on).
        slot = self.metrics.slots.reserve() if self.metrics is not None else None
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            os.close(read_end)
            os.close(write_end)
            error_logger.error("cannot start a worker process: %s; stopping", exc.strerror or exc)
            self.exit_code = 1
            self._stopping = time.monotonic()
            notify("STOPPING=1")
            return None
        if pid == 0:  # the child: never returns
            parent_fds = [read_end, self._wake_r, self._wake_w]
            run_worker(
                WorkerSpec(
                    config=self.config,
                    sockets=self.sockets,
                    hooks=self.hooks,
                    parent_pid=os.getppid(),
                    pipe=write_end,
                    app=self.app,
                    close_fds=parent_fds + [w.fd for w in self.workers.values()],
                    metrics=self.metrics.in_child(slot) if self.metrics is not None else None,
                )
            )
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        os.close(write_end)
        os.set_blocking(read_end, False)
        if self.metrics is not None:
            self.metrics.slots.spawned(pid, slot)
        now = time.monotonic()
        worker = _Worker(pid, read_end, born=now, last_beat=now, replaces=replaces)
        self.workers[pid] = worker
        error_logger.info("started worker %d", pid)
        return worker

    def _drain(self, worker: _Worker, replaced: bool = False) -> None:
        """Ask ``worker`` to finish what it accepted and exit: SIGUSR2 when a replacement
        took over (its WebSockets get 1012), else SIGTERM (see the module docstring)."""
        if not worker.stopping_since:
            worker.stopping_since = time.monotonic()
            signum = signal.SIGUSR2 if replaced and worker.ready else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)

    def _abort(self, worker: _Worker, why: str) -> None:
        """A stuck worker: dump its stacks (SIGABRT + faulthandler), then SIGKILL."""
        if worker.aborted_since:
            return
        error_logger.error("worker %d timed out (%s); aborting it", worker.pid, why)
        now = time.monotonic()
        worker.aborted_since = now
        worker.stopping_since = worker.stopping_since or now
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGABRT)

    def _tell_all(self, signum: int) -> None:
        for worker in list(self.workers.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)

    def _replace(self, pid: int) -> None:
        if pid not in self._queue:
            self._queue.append(pid)

    def _reload(self, reread: bool) -> None:
        notify("RELOADING=1")
        if reread and self.hooks.reload_config is not None:
            try:
                config = self.hooks.reload_config()
            except ConfigError as exc:
                error_logger.error("SIGHUP: configuration not reloaded: %s", exc)
            else:
                if config.bind != self.config.bind:
                    error_logger.warning("SIGHUP: a new --bind needs a restart; kept the sockets")
                self.config = config.replace(bind=self.config.bind)
                self.target = config.workers
        for worker in sorted(self.workers.values(), key=lambda w: w.born):
            if not worker.stopping_since and worker is not self._replacement:
                self._replace(worker.pid)
        self._reloading = bool(self._queue)
        if not self._reloading:
            self._reload_over("nothing to replace")

    def _reload_over(self, how: str) -> None:
        self._reloading = False
        error_logger.info("reload %s", how)
        notify(f"READY=1\nSTATUS=serving with {self.target} worker(s)")

    # -- keeping the pool as asked -------------------------------------------------------------

    def _is_serving(self, pid: int) -> bool:
        return not self.workers[pid].stopping_since

    def _serving(self) -> list[_Worker]:
        return [w for w in self.workers.values() if not w.stopping_since]

    def _ready_count(self) -> int:
        return sum(1 for w in self._serving() if w.ready)

    def _maintain(self) -> None:
        if time.monotonic() < self._backoff_until:
            return
        self._queue = [p for p in self._queue if p in self.workers and self._is_serving(p)]
        serving = self._serving()
        count = len(serving) - (1 if self._replacement is not None else 0)
        while count < self.target and not self._stopping:
            if self._spawn() is None:
                return
            count += 1
        if count > self.target and self._replacement is None:
            surplus = sorted(serving, key=lambda w: w.born)[: count - self.target]
            for worker in surplus:
                self._drain(worker)
        if self._replacement is None and self._queue and not self._stopping:
            self._replacement = self._spawn(replaces=self._queue.pop(0))

    def _check_health(self) -> None:
        now = time.monotonic()
        timeout = self.config.timeout
        grace = self.config.graceful_timeout + self.config.shutdown_delay + 1.0
        for worker in list(self.workers.values()):
            overdue = worker.aborted_since and now - worker.aborted_since > _KILL_AFTER_ABORT
            if overdue or (worker.stopping_since and now - worker.stopping_since > grace):
                self._kill(worker)
            elif timeout and not worker.stopping_since and now - worker.last_beat > timeout:
                self._abort(worker, f"no heartbeat for {now - worker.last_beat:.1f}s")

    def _kill(self, worker: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)

    # -- children that exit --------------------------------------------------------------------

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None and self.metrics is not None:  # its counts are kept
                on_purpose = bool(worker.stopping_since) and not self._stopping
                died = not worker.stopping_since and not self._stopping
                self.metrics.slots.retire(pid, replaced=died, recycled=on_purpose)
            if worker is not None:
                self._read(worker)  # its last words (an error line) may still be in the pipe
                os.close(worker.fd)
                self._exited(worker, status)

    def _exited(self, worker: _Worker, status: int) -> None:
        if self._replacement is worker:
            self._replacement = None
        how = _describe(status)
        if worker.stopping_since or self._stopping:
            error_logger.info("worker %d %s", worker.pid, "stopped" if status == 0 else how)
            return
        if worker.ready and not worker.error:  # an error after "ready": start() failed
            error_logger.warning("worker %d %s; starting another", worker.pid, how)
            return
        if worker.retry:  # not a boot failure: _maintain starts the next one now
            return
        error = worker.error or how
        if worker.replaces:
            error_logger.error(
                "new worker failed to boot (%s); the old workers keep serving", error
            )
            self._queue.clear()
            if self._reloading:
                self._reload_over("stopped")
            return
        self._boot_failed(worker, error)

    def _boot_failed(self, worker: _Worker, error: str) -> None:
        self._boot_failures += 1
        if not self._ever_ready and worker.error_code == 2:
            self._give_up(2, f"worker failed to boot: {error}")
        elif self._boot_failures >= BOOT_FAILURES:
            self._give_up(1, f"{BOOT_FAILURES} workers in a row failed to boot; last: {error}")
        else:
            delay = min(0.1 * 2 ** (self._boot_failures - 1), 5.0)
            error_logger.error("worker %d failed to boot (%s); retrying in %gs",
                               worker.pid, error, delay)  # fmt: skip
            self._backoff_until = time.monotonic() + delay

    def _give_up(self, code: int, message: str) -> None:
        error_logger.error("%s", message)
        self.exit_code = code
        self._stopping = time.monotonic()
        notify("STOPPING=1")

    def _stop_workers(self) -> bool:
        """One step of the shutdown; False once every worker is gone."""
        if not self.workers:
            return False
        now = time.monotonic()
        limit = 1.0 if self._quick else self.config.graceful_timeout + self.config.shutdown_delay
        for worker in list(self.workers.values()):
            if now - self._stopping > limit + 0.5:
                self._kill(worker)
            elif self._quick and worker.stopping_since != -1.0:
                worker.stopping_since = -1.0  # told to quit (one still booting: killed)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGQUIT if worker.ready else signal.SIGKILL)
            elif not self._quick:
                self._drain(worker)
        return True


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
