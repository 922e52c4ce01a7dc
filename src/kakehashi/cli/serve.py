"""Serve a WSGI or ASGI application (the demo when none is named).

The flags are generated from the fields of ServerConfig (one declaration per setting, with
the spellings gunicorn and uvicorn users know as its aliases: cli/flags.py).  An application
that fails to import is reported with its traceback.  This is the only place that installs signal
handlers: SIGINT or SIGTERM asks the server to shut down gracefully, a second SIGINT forces
the exit (cli/lifecycle.py); with several workers the arbiter (server/process/arbiter.py) does.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

from kakehashi import __version__
from kakehashi.asgi import Interface, detect
from kakehashi.cli.engines import any_engine, pick_interface, serve_asgi
from kakehashi.cli.flags import (
    DEFAULT_APP,
    AppSpec,
    add_arguments,
    config_from_args,
    settings_from_args,
)
from kakehashi.cli.lifecycle import PidFile, needs_manager, reopen_logs, serve_in_process
from kakehashi.cli.logsetup import configure_logging
from kakehashi.errors import AppImportError, ConfigError
from kakehashi.server import Server, ServerConfig
from kakehashi.server.config.sources import to_toml
from kakehashi.server.edge.tls import make_context
from kakehashi.server.net.bind import bind_sockets
from kakehashi.server.net.systemd import listen_fds
from kakehashi.server.observe.logguard import restore_logs
from kakehashi.server.process.arbiter import Arbiter
from kakehashi.server.process.reloader import format_import_error
from kakehashi.server.process.worker import WorkerHooks
from kakehashi.server.threads.server import managed_server
from kakehashi.wsgi import WSGIApp

__all__ = ["DEFAULT_APP", "add_arguments", "config_from_args", "load_app", "run"]

_APP_RE = re.compile(r"(?P<module>[\w.]+):(?P<attr>[\w.]+)(?P<call>\(\))?")
_MAIN_PID = os.getpid()  # pre-fork workers share the sockets; only the parent removes files


def load_app(reference: str, factory: bool = False) -> WSGIApp:
    """Import ``module:attr`` or call ``module:factory()`` (or ``module:factory`` with
    ``factory``, uvicorn's ``--factory``).

    Raises:
        AppImportError: the reference is malformed, the module or attribute is missing, or
            the module or factory raised (then the exception is its ``__cause__``, for its
            traceback).
    """
    m = _APP_RE.fullmatch(reference)
    if m is None:
        raise AppImportError(f"{reference!r} is not module:attr or module:factory()")
    if os.getcwd() not in sys.path:  # as gunicorn: apps next to where you run it
        sys.path.insert(0, os.getcwd())
    module = _import(m["module"])
    target: Any = module
    for part in m["attr"].split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppImportError(f"{m['module']!r} has no attribute {m['attr']!r}") from None
    if m["call"] or factory:
        try:
            target = target()
        except Exception as exc:
            raise AppImportError(f"calling {m['module']}:{m['attr']}() failed: {exc!r}") from exc
    if not callable(target) or isinstance(target, types.ModuleType):
        raise AppImportError(f"{reference!r} is not an application (not callable)")
    app: WSGIApp = target
    return app


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if name == missing or name.startswith(f"{missing}."):  # the module itself: one line
            raise AppImportError(f"cannot import {name!r}: {exc}") from None
        raise AppImportError(f"importing {name!r} failed: {exc!r}") from exc
    except Exception as exc:  # the module runs and fails: its traceback is the cause
        raise AppImportError(f"importing {name!r} failed: {exc!r}") from exc


def _report(exc: ConfigError) -> None:
    """One line; after the traceback of the application's own failure, if that was it."""
    if isinstance(exc, AppImportError) and exc.__cause__ is not None:
        print(format_import_error(exc.__cause__), end="", file=sys.stderr)
    print(f"kakehashi: {exc}", file=sys.stderr)


def _raise_fd_limit() -> None:
    """Lift the soft limit on open files to the hard one: parked connections are cheap, but
    each is a descriptor, and the usual soft limit (1024) would cap a flood defence at that."""
    try:
        import resource  # POSIX only
    except ImportError:  # Windows: no such limit to lift
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(args: argparse.Namespace) -> int:
    _raise_fd_limit()
    try:
        config, spec = settings_from_args(args)
        if args.print_config or args.check_config:
            return _inspect(args, config, spec)
        configure_logging(config)
        config = _prepare(config)
        app, interface = pick_interface(
            spec.reference, config, lambda reference: load_app(reference, spec.factory)
        )
        if interface.is_asgi and not needs_manager(config):  # the asyncio engine (engines.py)
            restore_logs()  # the application's logging setup may have switched ours off
            try:
                return serve_asgi(spec.reference, config, app, interface)
            finally:
                _remove_unix_sockets(config)
        sockets = bind_sockets(config.addresses, config.backlog, config.reuse_port)
        server = _make_server(args, config, spec, sockets, app)  # binds --metrics-bind too
        restore_logs()  # the application's logging setup may have switched ours off
        pid_file = PidFile(config.pid)
        pid_file.write()
    except ConfigError as exc:
        _report(exc)
        return 2
    log = logging.getLogger("kakehashi.error")
    for sock in sockets:
        where = _where(sock, config.tls)
        log.info("kakehashi %s serving %s on %s", __version__, spec.reference, where)
    if interface is Interface.WSGI:
        log.info("pid %d, %d thread(s) x %d worker(s)", os.getpid(), config.threads,
                 config.workers)  # fmt: skip
    else:  # ASGI: one event loop per worker; AUTO: each worker tells (cli/engines.py)
        log.info("pid %d, %d worker(s)", os.getpid(), config.workers)
    try:
        if isinstance(server, Server):
            return serve_in_process(server)
        return server.run()
    finally:
        pid_file.remove()
        _remove_unix_sockets(config)


def _make_server(
    args: argparse.Namespace,
    config: ServerConfig,
    spec: AppSpec,
    sockets: list[Any],
    app: WSGIApp | None,
) -> Server | Arbiter:
    """One process serving, or the process manager (``--workers`` and friends).

    Raises:
        ConfigError: the application cannot be imported, --metrics-bind cannot be bound,
            or the TLS certificate cannot be loaded.
    """
    managed = needs_manager(config)  # app: imported already unless workers import it
    if not managed:
        assert app is not None
        if config.shutdown_delay:  # to answer with Connection: close during the delay
            return managed_server(app, config, sockets=sockets)
        return Server(app, config, sockets=sockets)
    if config.tls:  # a certificate that cannot be loaded stops the start, not every worker
        make_context(config)
    hooks = WorkerHooks(
        load_app=lambda: load_app(spec.reference, spec.factory),
        engine=any_engine,  # each worker serves the application with the engine of its kind
        reopen_logs=reopen_logs,
        reload_config=lambda: config_from_args(args),
    )
    return Arbiter(config, sockets, hooks, app=app)


def _inspect(args: argparse.Namespace, config: ServerConfig, spec: AppSpec) -> int:
    """``--print-config`` / ``--check-config``: nothing is bound.

    Raises:
        ConfigError: --check-config, and the directory or the application is wrong.
    """
    if args.print_config:  # the application too, so the output is a whole --config file
        print(f"app = {json.dumps(spec.reference)}")
        if spec.factory:
            print("factory = true")
        print(to_toml(config), end="")
    if args.check_config:
        if config.chdir:
            _enter(config.chdir)
        detect(load_app(spec.reference, spec.factory), Interface.named(config.interface))
        print(f"kakehashi: the configuration and {spec.reference} are fine", file=sys.stderr)
    return 0


def _enter(directory: str) -> None:
    try:
        os.chdir(directory)
    except OSError as exc:
        raise ConfigError(f"cannot --chdir {directory}: {exc.strerror or exc}") from exc


def _prepare(config: ServerConfig) -> ServerConfig:
    """``--chdir``, then the sockets systemd passed (they replace ``--bind``).

    Raises:
        ConfigError: the directory cannot be entered.
    """
    if config.chdir:
        _enter(config.chdir)
    fds = listen_fds()
    if fds:
        logging.getLogger("kakehashi.error").info("%d socket(s) from systemd", len(fds))
        config = config.replace(bind=tuple(f"fd://{fd}" for fd in fds))
    return config


def _remove_unix_sockets(config: ServerConfig) -> None:
    """Unlink the Unix socket files this process bound, so a restart finds the path free."""
    if os.getpid() != _MAIN_PID:
        return
    for address in config.addresses:
        if address.unix_path:
            with contextlib.suppress(OSError):
                Path(address.unix_path).unlink()


def _where(sock: Any, tls: bool = False) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{'https' if tls else 'http'}://{host}:{name[1]}/"
