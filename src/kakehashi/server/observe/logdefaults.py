"""kakehashi's default log handlers: errors and the access log, written to stderr.

Importing the library configures no logging.  Two entry points install these handlers:
``kakehashi serve`` (cli/logsetup.py, whose flags choose the destinations and may replace
them with a dictConfig), and ``App.run()``, the development server, which installs them only
where the program has not set logging up itself: a handler anywhere on a logger's way to the
root means the program chose where that logger's records go (werkzeug's development server
follows the same rule), so ``logging.basicConfig(...)`` before ``app.run()`` gets the access
lines as records instead.

The access handler is a buffered :class:`LogFileHandler` alone on ``kakehashi.access`` with
propagation off: that is the shape the access log writes to directly, without making a
``logging`` record per request (accesslog.py).
"""

from __future__ import annotations

import logging
import sys

from kakehashi.server.observe.logfile import LogFileHandler

__all__ = [
    "ERROR_FORMAT",
    "install_access_handler",
    "install_error_handler",
    "log_to_stderr_unless_configured",
]

ERROR_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"
_ROOT = "kakehashi"
_ACCESS = "kakehashi.access"


def install_error_handler(handler: logging.Handler) -> None:
    """Give ``handler`` kakehashi's error-log format and put it on the ``kakehashi`` logger
    (so also on ``kakehashi.error`` and, under its default name, the app's logger)."""
    handler.setFormatter(logging.Formatter(ERROR_FORMAT))
    logging.getLogger(_ROOT).addHandler(handler)


def install_access_handler(handler: LogFileHandler) -> None:
    """Make ``handler`` the access logger's only handler (those it had are closed) and stop
    its lines from also reaching the error log's handlers."""
    access = logging.getLogger(_ACCESS)
    for old in access.handlers[:]:
        access.removeHandler(old)
        old.close()
    access.addHandler(handler)
    access.propagate = False


def log_to_stderr_unless_configured(access_log: bool) -> None:
    """``App.run()``'s logging: errors and, when ``access_log``, one line per request on
    stderr, for each of the two loggers no handler of the program's covers yet.

    The ``kakehashi`` logger gets level INFO unless it has a level already, so the lines
    show even under a root logger left at WARNING; calling this again adds nothing.
    """
    root = logging.getLogger(_ROOT)
    # Asked before either handler is added: the error handler would cover the access logger.
    access_covered = logging.getLogger(_ACCESS).hasHandlers()
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not root.hasHandlers():
        install_error_handler(logging.StreamHandler(sys.stderr))
    if access_log and not access_covered:
        install_access_handler(LogFileHandler(stream=sys.stderr))
