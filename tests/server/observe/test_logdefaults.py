"""The handlers App.run() installs: only where no handler of the program's covers a logger.

These tests change the kakehashi loggers, so each saves them first and puts them back.  The
``kakehashi`` logger is cut off from the root while they run: pytest's capture handlers sit
on the root during a test and would count as the program's (the root's case is
tests/app/test_run.py's, in a subprocess, with ``logging.basicConfig``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from kakehashi.server.observe.logdefaults import log_to_stderr_unless_configured
from kakehashi.server.observe.logfile import LogFileHandler

NAMES = ("kakehashi", "kakehashi.access")


@pytest.fixture
def bare_logging() -> Iterator[None]:
    """No handler on the kakehashi or access loggers, levels unset; restored after."""
    saved = []
    for name in NAMES:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = name != "kakehashi"
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_unconfigured_loggers_get_stderr_handlers_once(bare_logging: None) -> None:
    log_to_stderr_unless_configured(access_log=True)
    log_to_stderr_unless_configured(access_log=True)  # a second run() adds nothing
    root, access = logging.getLogger("kakehashi"), logging.getLogger("kakehashi.access")
    assert root.level == logging.INFO
    assert [type(h) for h in root.handlers] == [logging.StreamHandler]
    assert [type(h) for h in access.handlers] == [LogFileHandler]
    assert access.propagate is False  # its lines do not also reach the error handler


def test_access_log_off_installs_no_access_handler(bare_logging: None) -> None:
    log_to_stderr_unless_configured(access_log=False)
    assert logging.getLogger("kakehashi.access").handlers == []
    assert len(logging.getLogger("kakehashi").handlers) == 1


def test_a_program_handler_above_both_wins(bare_logging: None) -> None:
    mine = logging.StreamHandler(io.StringIO())
    logging.getLogger("kakehashi").addHandler(mine)
    logging.getLogger("kakehashi").setLevel(logging.WARNING)  # the program's level is kept
    log_to_stderr_unless_configured(access_log=True)
    assert logging.getLogger("kakehashi").handlers == [mine]
    assert logging.getLogger("kakehashi.access").handlers == []
    assert logging.getLogger("kakehashi").level == logging.WARNING


def test_a_program_handler_on_the_access_logger_only(bare_logging: None) -> None:
    mine = logging.StreamHandler(io.StringIO())
    logging.getLogger("kakehashi.access").addHandler(mine)
    log_to_stderr_unless_configured(access_log=True)
    assert logging.getLogger("kakehashi.access").handlers == [mine]
    assert len(logging.getLogger("kakehashi").handlers) == 1  # errors still shown
