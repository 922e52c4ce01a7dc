"""Logging for ``kakehashi serve``: its flags and the handlers they install.

The library configures no logging; the CLI does, here, as gunicorn does: errors to stderr
(or ``--error-logfile``), the access log to stderr (or ``--access-logfile``, ``-`` being
stdout), both through kakehashi's buffered LogFileHandler so an access line costs the request
a list append.  ``--log-config FILE`` (a ``logging.config.dictConfig`` in JSON or TOML)
replaces these defaults; a config that gives ``kakehashi.access`` handlers of its own gets
every line as a ``logging`` record.

Whatever the application then does to ``logging`` when it is imported (Django's and Flask's
``dictConfig``), these logs stay on, unless its configuration names kakehashi's loggers:
then it is followed (kakehashi.server.logguard).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import sys
import tomllib
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.logfile import LogFileHandler
from kakehashi.server.logguard import guard_logs

__all__ = ["add_logging_arguments", "configure_logging"]

_ERROR_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"
_MAX_CONFIG_BYTES = 1 << 20


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging destinations")
    group.add_argument(
        "--access-logfile",
        metavar="PATH",
        help="write the access log to PATH ('-' = stdout; default: stderr)",
    )
    group.add_argument(
        "--error-logfile",
        metavar="PATH",
        help="write the error log to PATH ('-' = stderr, the default)",
    )
    group.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="level of the kakehashi loggers (default: info)",
    )
    group.add_argument(
        "--log-config",
        metavar="FILE",
        help="a logging.config.dictConfig in JSON or TOML (.toml) replacing the defaults",
    )


def configure_logging(args: argparse.Namespace, config: ServerConfig) -> None:
    """Install the handlers the flags ask for; with --log-config, only those of the flags
    given explicitly, on top of the file's.

    Raises:
        ConfigError: a log file cannot be opened, or the --log-config file is unusable.
    """
    root = logging.getLogger("kakehashi")
    access = logging.getLogger("kakehashi.access")
    root.setLevel(getattr(logging, args.log_level.upper()))
    if args.log_config:
        _apply_dict_config(args.log_config)
    if not args.log_config or args.error_logfile:
        errors: logging.Handler = logging.StreamHandler(sys.stderr)
        if args.error_logfile not in (None, "-"):
            errors = _open("--error-logfile", args.error_logfile, sys.stderr, buffered=False)
        errors.setFormatter(logging.Formatter(_ERROR_FORMAT))
        root.addHandler(errors)
        # Written here only (gunicorn does the same for its error log): an application that
        # gives the root logger a handler (Flask's recipe does) would print every line twice.
        root.propagate = False
    if config.access_log and (not args.log_config or args.access_logfile):
        for old in access.handlers[:]:  # the flag replaces what the file said for it
            access.removeHandler(old)
            old.close()
        access.addHandler(_open("--access-logfile", args.access_logfile, sys.stderr))
        access.propagate = False
    if not args.log_config or access.level == logging.NOTSET:
        access.setLevel(logging.INFO if config.access_log else logging.WARNING)
    guard_logs()


def _open(flag: str, path: str | None, default: Any, buffered: bool = True) -> LogFileHandler:
    if path is None:
        return LogFileHandler(stream=default, buffered=buffered)
    if path == "-":  # gunicorn's meaning
        return LogFileHandler(stream=sys.stdout, buffered=buffered)
    try:
        return LogFileHandler(filename=path, buffered=buffered)
    except OSError as exc:
        raise ConfigError(f"cannot open {flag} {path}: {exc.strerror or exc}") from exc


def _apply_dict_config(path: str) -> None:
    try:
        with open(path, "rb") as file:
            raw = file.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read --log-config {path}: {exc.strerror or exc}") from exc
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"--log-config {path} is larger than 1 MiB")
    try:
        if path.endswith(".toml"):
            settings: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            settings = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--log-config {path} is not valid JSON or TOML: {exc}") from exc
    if not isinstance(settings, dict):
        raise ConfigError(f"--log-config {path} must hold a dictConfig object (a table)")
    settings.setdefault("version", 1)
    # dictConfig's own default would silence kakehashi's loggers, created at import.
    settings.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(settings)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ConfigError(f"--log-config {path}: {exc}") from exc
