"""Serve a WSGI application (the demo when none is named).

The flags are generated from the fields of ServerConfig (one declaration per setting), plus
gunicorn's and uvicorn's spellings users already know: ``--host``/``--port``,
``--access-logfile`` and ``--log-level``.  This is the only place that installs signal
handlers: SIGINT or SIGTERM asks the server to shut down gracefully, a second SIGINT forces
the exit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import os
import re
import resource
import signal
import sys
import types
from typing import Any, get_type_hints

from kakehashi import __version__
from kakehashi.errors import AppImportError, ConfigError
from kakehashi.server import Server, ServerConfig
from kakehashi.server.server import bind_sockets
from kakehashi.server.supervisor import Supervisor
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
        help_text = f"{meta['help']} (default: {_default_text(f)})"
        if kind is bool:
            group.add_argument(
                *flags, dest=f.name, action=argparse.BooleanOptionalAction, help=meta["help"]
            )
        elif f.name == "bind":
            group.add_argument(*flags, dest="bind", action="append", help=meta["help"])
        else:
            group.add_argument(*flags, dest=f.name, type=kind, metavar="N", help=help_text)
    aliases = parser.add_argument_group("aliases and logging")
    aliases.add_argument("--host", help="uvicorn-style host (with --port, instead of --bind)")
    aliases.add_argument("--port", type=int, help="uvicorn-style port")
    aliases.add_argument(
        "--access-logfile", metavar="PATH", help="write the access log to PATH ('-' = stderr)"
    )
    aliases.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="level of the kakehashi loggers (default: info)",
    )


def _default_text(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("default_text", f.default))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A ServerConfig from parsed flags; flags not given keep the config's defaults.

    Raises:
        ConfigError: a bad value, or --host/--port mixed with --bind.
    """
    settings: dict[str, Any] = {}
    for f in dataclasses.fields(ServerConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            settings[f.name] = tuple(value) if f.name == "bind" else value
    if args.host is not None or args.port is not None:
        if args.bind:
            raise ConfigError("use either --bind or --host/--port, not both")
        host = args.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        settings["bind"] = (f"{host}:{args.port if args.port is not None else 8000}",)
    return ServerConfig(**settings)


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


def _configure_logging(args: argparse.Namespace, config: ServerConfig) -> None:
    level = getattr(logging, args.log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s"))
    root = logging.getLogger("kakehashi")
    root.setLevel(level)
    root.addHandler(handler)
    access = logging.getLogger("kakehashi.access")
    if args.access_logfile not in (None, "-"):
        try:
            access.addHandler(logging.FileHandler(args.access_logfile))
        except OSError as exc:
            raise ConfigError(
                f"cannot open --access-logfile {args.access_logfile}: {exc.strerror or exc}"
            ) from exc
        access.propagate = False
    elif config.access_log:
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(plain)
        access.propagate = False
    access.setLevel(logging.INFO if config.access_log else logging.WARNING)


def _raise_fd_limit() -> None:
    """Lift the soft limit on open files to the hard one: parked connections are cheap, but
    each is a descriptor, and the usual soft limit (1024) would cap a flood defence at that."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(args: argparse.Namespace) -> int:
    _raise_fd_limit()
    try:
        config = config_from_args(args)
        _configure_logging(args, config)
        app = load_app(args.app)
        sockets = bind_sockets(config)
        server: Server | Supervisor
        if config.workers > 1:
            server = Supervisor(app, config, sockets)
        else:
            server = Server(app, config, sockets=sockets)  # binds --metrics-bind
    except ConfigError as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return 2
    log = logging.getLogger("kakehashi.error")
    for sock in sockets:
        log.info("kakehashi %s serving %s on %s", __version__, args.app, _where(sock))
    log.info("pid %d, %d thread(s) x %d worker(s)", os.getpid(), config.threads, config.workers)
    previous = _install_signals(server)
    try:
        if isinstance(server, Supervisor):
            return server.run()
        server.serve_forever()
        return 0
    except KeyboardInterrupt:
        log.warning("forced exit")
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _remove_unix_sockets(config)


def _remove_unix_sockets(config: ServerConfig) -> None:
    """Unlink the Unix socket files this process bound, so a restart finds the path free."""
    if os.getpid() != _MAIN_PID:
        return
    for address in config.addresses:
        if address.unix_path:
            with contextlib.suppress(OSError):
                os.unlink(address.unix_path)


def _where(sock: Any) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"http://{host}:{name[1]}/"


def _install_signals(server: Server | Supervisor) -> dict[int, Any]:
    """First SIGINT/SIGTERM: graceful shutdown.  A second SIGINT: forced exit."""
    asked: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked.append(signum)
        logging.getLogger("kakehashi.error").info(
            "%s: shutting down gracefully", signal.Signals(signum).name
        )
        server.request_shutdown()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous
