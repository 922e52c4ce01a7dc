"""Logging for ``kakehashi serve``: the handlers its logging settings ask for.

The library configures no logging; the CLI does, here, as gunicorn does: errors to stderr
(or ``--error-logfile``), the access log to stderr (or ``--access-logfile``, ``-`` being
stdout), both through kakehashi's buffered LogFileHandler so an access line costs the request
a list append.  The handlers are put in place by server/observe/logdefaults.py, which ``App.run()``
shares.  ``--log-config FILE`` (a ``logging.config.dictConfig`` in JSON or TOML)
replaces these defaults; a config that gives ``kakehashi.access`` handlers of its own gets
every line as a ``logging`` record.

Whatever the application then does to ``logging`` when it is imported (Django's and Flask's
``dictConfig``), these logs stay on, unless its configuration names kakehashi's loggers:
then it is followed (kakehashi.server.observe.logguard).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import tomllib
from typing import Any

from kakehashi.errors import ConfigError
from kakehashi.server import ServerConfig
from kakehashi.server.observe.logdefaults import install_access_handler, install_error_handler
from kakehashi.server.observe.logfile import LogFileHandler
from kakehashi.server.observe.logguard import guard_logs

__all__ = ["configure_logging"]

_MAX_CONFIG_BYTES = 1 << 20


def configure_logging(config: ServerConfig) -> None:
    """Install the handlers the settings ask for (``--access-logfile``, ``--error-logfile``,
    ``--log-level``, ``--log-config``: fields of ServerConfig); with --log-config, only those
    of the log files given explicitly, on top of the file's.

    Raises:
        ConfigError: a log file cannot be opened, or the --log-config file is unusable.
    """
    root = logging.getLogger("kakehashi")
    access = logging.getLogger("kakehashi.access")
    root.setLevel(getattr(logging, config.log_level.upper()))
    if config.log_config:
        _apply_dict_config(config.log_config)
    if not config.log_config or config.error_logfile:
        errors: logging.Handler = logging.StreamHandler(sys.stderr)
        if config.error_logfile not in ("", "-"):
            errors = _open("--error-logfile", config.error_logfile, sys.stderr, buffered=False)
        install_error_handler(errors)
        # Written here only (gunicorn does the same for its error log): an application that
        # gives the root logger a handler (Flask's recipe does) would print every line twice.
        root.propagate = False
    if config.access_log and (not config.log_config or config.access_logfile):
        # The flag replaces what the file said for it.
        install_access_handler(_open("--access-logfile", config.access_logfile, sys.stderr))
    if not config.log_config or access.level == logging.NOTSET:
        access.setLevel(logging.INFO if config.access_log else logging.WARNING)
    guard_logs()


def _open(flag: str, path: str, default: Any, buffered: bool = True) -> LogFileHandler:
    if not path:
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
