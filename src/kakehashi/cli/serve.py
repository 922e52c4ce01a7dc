"""Serve a WSGI application (the demo when none is named).

The flags are generated from the fields of ServerConfig (one declaration per setting), plus
gunicorn's and uvicorn's spellings users already know: ``--host``/``--port``,
``--access-logfile`` and ``--log-level``.  This is the only place that installs signal
handlers: SIGINT or SIGTERM asks the server to shut down gracefully, a second SIGINT forces
the exit (cli/lifecycle.py); with several workers the arbiter (server/arbiter.py) does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from kakehashi import __version__
from kakehashi.cli.lifecycle import PidFile, needs_manager, reopen_logs, serve_in_process
from kakehashi.cli.logsetup import add_logging_arguments, configure_logging
from kakehashi.errors import AppImportError, ConfigError
from kakehashi.server import Server, ServerConfig
from kakehashi.server.arbiter import Arbiter
from kakehashi.server.config_sources import from_env, from_toml, merge, to_toml
from kakehashi.server.logguard import restore_logs
from kakehashi.server.server import bind_sockets
from kakehashi.server.systemd import listen_fds
from kakehashi.server.tls import make_context
from kakehashi.server.worker import RequestTracker, WorkerHooks
from kakehashi.wsgi import WSGIApp

__all__ = ["add_arguments", "load_app", "run"]

DEFAULT_APP = "kakehashi.demo:app"
_APP_RE = re.compile(r"(?P<module>[\w.]+):(?P<attr>[\w.]+)(?P<call>\(\))?")
_TYPES = get_type_hints(ServerConfig)
_MAIN_PID = os.getpid()  # pre-fork workers share the sockets; only the parent removes files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "app",
        nargs="?",
        default=DEFAULT_APP,
        metavar="APP",
        help=f"the application as module:attr or module:factory() (default {DEFAULT_APP})",
    )
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(ServerConfig):
        meta = f.metadata
        group = groups.get(meta["section"]) or parser.add_argument_group(meta["section"])
        groups[meta["section"]] = group
        flags = [meta["flag"], *([meta["short"]] if "short" in meta else [])]
        kind = _TYPES[f.name]
        help_text = f"{meta['help']} (default: {_default_text(f)})".replace("%", "%%")
        if kind is bool:
            group.add_argument(
                *flags,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                help=meta["help"].replace("%", "%%"),
            )
        elif kind == tuple[str, ...]:  # repeatable
            group.add_argument(
                *flags, dest=f.name, action="append", metavar=meta.get("metavar"), help=meta["help"]
            )
        else:
            metavar = meta.get("metavar", "N" if kind in (int, float) else "VALUE")
            group.add_argument(*flags, dest=f.name, type=kind, metavar=metavar, help=help_text)
    files = parser.add_argument_group("configuration file")
    files.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from a TOML file (keys are the long flag names); the environment "
        "(KAKEHASHI_<NAME>) and the command line override it",
    )
    files.add_argument(
        "--print-config", action="store_true", help="print the merged settings as TOML and exit"
    )
    files.add_argument(
        "--check-config",
        action="store_true",
        help="check the settings and import the application, then exit (0 ok, 2 not)",
    )
    aliases = parser.add_argument_group("aliases")
    aliases.add_argument("--host", help="uvicorn-style host (with --port, instead of --bind)")
    aliases.add_argument("--port", type=int, help="uvicorn-style port")
    add_logging_arguments(parser)


def _default_text(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("default_text", f.default))


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """The settings: defaults < ``--config`` file < ``KAKEHASHI_*`` variables < flags.

    Raises:
        ConfigError: a bad value (naming its key and source), or --host/--port mixed with
            --bind.
    """
    settings: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(ServerConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            settings[f.name] = (f.metadata["flag"], tuple(value) if type(value) is list else value)
    if args.host is not None or args.port is not None:
        if args.bind:
            raise ConfigError("use either --bind or --host/--port, not both")
        host = args.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        settings["bind"] = ("--port", (f"{host}:{args.port if args.port is not None else 8000}",))
    layers = [from_toml(args.config)] if getattr(args, "config", None) else []
    layers.append(from_env(os.environ if environ is None else environ))
    layers.append(("command line", settings))
    return merge(layers)


def load_app(reference: str) -> WSGIApp:
    """Import ``module:attr`` or call ``module:factory()``.

    Raises:
        AppImportError: the reference is malformed, or the module or attribute is missing.
    """
    m = _APP_RE.fullmatch(reference)
    if m is None:
        raise AppImportError(f"{reference!r} is not module:attr or module:factory()")
    if os.getcwd() not in sys.path:  # as gunicorn: apps next to where you run it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(m["module"])
    except ImportError as exc:
        raise AppImportError(f"cannot import {m['module']!r}: {exc}") from exc
    except Exception as exc:  # the module itself fails: say how, without a traceback
        raise AppImportError(f"importing {m['module']!r} failed: {exc!r}") from exc
    target: Any = module
    for part in m["attr"].split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppImportError(f"{m['module']!r} has no attribute {m['attr']!r}") from None
    if m["call"]:
        try:
            target = target()
        except Exception as exc:
            raise AppImportError(f"{reference} failed: {exc!r}") from exc
    if not callable(target) or isinstance(target, types.ModuleType):
        raise AppImportError(f"{reference!r} is not a WSGI application (not callable)")
    app: WSGIApp = target
    return app


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
        config = config_from_args(args)
        if args.print_config or args.check_config:
            return _inspect(args, config)
        configure_logging(args, config)
        config = _prepare(config)
        sockets = bind_sockets(config)
        server = _make_server(args, config, sockets)  # binds --metrics-bind too
        restore_logs()  # the application's logging setup may have switched ours off
        pid_file = PidFile(config.pid)
        pid_file.write()
    except ConfigError as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return 2
    log = logging.getLogger("kakehashi.error")
    for sock in sockets:
        log.info("kakehashi %s serving %s on %s", __version__, args.app, _where(sock, config.tls))
    log.info("pid %d, %d thread(s) x %d worker(s)", os.getpid(), config.threads, config.workers)
    try:
        if isinstance(server, Server):
            return serve_in_process(server)
        return server.run()
    finally:
        pid_file.remove()
        _remove_unix_sockets(config)


def _make_server(
    args: argparse.Namespace, config: ServerConfig, sockets: list[Any]
) -> Server | Arbiter:
    """One process serving, or the process manager (``--workers`` and friends).

    Raises:
        ConfigError: the application cannot be imported, --metrics-bind cannot be bound,
            or the TLS certificate cannot be loaded.
    """
    managed = needs_manager(config)
    app = load_app(args.app) if config.preload or not managed else None
    if not managed:
        assert app is not None
        if config.shutdown_delay:  # to answer with Connection: close during the delay
            app = RequestTracker(app)
        return Server(app, config, sockets=sockets)
    if config.tls:  # a certificate that cannot be loaded stops the start, not every worker
        make_context(config)
    hooks = WorkerHooks(
        load_app=lambda: load_app(args.app),
        reopen_logs=reopen_logs,
        reload_config=lambda: config_from_args(args),
    )
    return Arbiter(config, sockets, hooks, app=app)


def _inspect(args: argparse.Namespace, config: ServerConfig) -> int:
    """``--print-config`` / ``--check-config``: nothing is bound.

    Raises:
        ConfigError: --check-config, and the directory or the application is wrong.
    """
    if args.print_config:
        print(to_toml(config), end="")
    if args.check_config:
        if config.chdir:
            _enter(config.chdir)
        load_app(args.app)
        print(f"kakehashi: the configuration and {args.app} are fine", file=sys.stderr)
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
