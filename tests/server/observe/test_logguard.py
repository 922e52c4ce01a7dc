"""logguard: kakehashi's loggers stay on through an application's ``logging.config`` call
that does not name them, and follow one that does; off unless ``kakehashi serve`` asked."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.server.observe.logfile import LogFileHandler
from kakehashi.server.observe.logguard import guard_logs, restore_logs, unguard_logs
from tests.wire import wait_until

_State = tuple[bool, int, list[logging.Handler], bool, list[Any]]


def _loggers() -> list[logging.Logger]:
    found = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            found.append(logger)
    return found


@pytest.fixture
def ours() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """kakehashi's loggers set up as ``kakehashi serve`` does (streams instead of stderr),
    guarded; every logger of the process is put back afterwards, since the tests call
    ``dictConfig`` in this process."""
    saved: dict[logging.Logger, _State] = {
        logger: (
            logger.disabled,
            logger.level,
            logger.handlers[:],
            logger.propagate,
            logger.filters[:],
        )
        for logger in _loggers()
    }
    errors, access = io.StringIO(), io.StringIO()
    root, access_logger = logging.getLogger("kakehashi"), logging.getLogger("kakehashi.access")
    made = [LogFileHandler(stream=errors, buffered=False), LogFileHandler(stream=access)]
    root.handlers, root.propagate = [made[0]], False
    root.setLevel(logging.INFO)
    access_logger.handlers, access_logger.propagate = [made[1]], False
    access_logger.setLevel(logging.INFO)
    guard_logs()
    try:
        yield errors, access
    finally:
        unguard_logs()
        for handler in made:
            handler.close()
        for logger in _loggers():
            if logger in saved:
                disabled, level, handlers, propagate, filters = saved[logger]
                logger.disabled, logger.handlers = disabled, handlers
                logger.propagate, logger.filters = propagate, filters
                logger.setLevel(level)
            else:  # made since (by dictConfig, or "kakehashi" itself): as a new one
                logger.disabled, logger.propagate = False, True
                logger.handlers, logger.filters = [], []
                logger.setLevel(logging.NOTSET)


def _flask_recipe(stream: io.StringIO) -> None:
    # Flask's documented recipe ("Logging"), its stream replaced: disable_existing_loggers
    # is left to its default, true.
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": {"default": {"format": "[%(asctime)s] %(levelname)s: %(message)s"}},
            "handlers": {
                "wsgi": {"class": "logging.StreamHandler", "stream": stream, "formatter": "default"}
            },
            "root": {"level": "INFO", "handlers": ["wsgi"]},
        }
    )


def test_a_recipe_that_disables_existing_loggers_is_undone_for_ours(
    ours: tuple[io.StringIO, io.StringIO],
) -> None:
    errors, access = ours
    app_stream = io.StringIO()
    _flask_recipe(app_stream)
    assert logging.getLogger("kakehashi.access").disabled  # what the recipe does
    assert sorted(restore_logs()) == ["kakehashi", "kakehashi.access", "kakehashi.error"]
    logging.getLogger("kakehashi.error").info("banner")
    logging.getLogger("kakehashi.access").info("access line")
    assert errors.getvalue() == "banner\n"  # written at once; and the handler was closed
    assert wait_until(lambda: access.getvalue() == "access line\n")  # its flusher runs again
    assert "banner" not in app_stream.getvalue()  # no second copy through the root logger
    assert restore_logs() == []  # nothing to do twice


def test_off_unless_kakehashi_serve_asked(ours: tuple[io.StringIO, io.StringIO]) -> None:
    unguard_logs()  # a program embedding the Server: logging is its business
    _flask_recipe(io.StringIO())
    assert restore_logs() == []
    assert logging.getLogger("kakehashi.access").disabled


def test_a_config_naming_the_access_logger_is_followed(
    ours: tuple[io.StringIO, io.StringIO],
) -> None:
    errors, access = ours
    routed = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": {"tagged": {"format": "ROUTED %(message)s"}},
            "handlers": {
                "mine": {"class": "logging.StreamHandler", "stream": routed, "formatter": "tagged"}
            },
            "loggers": {"kakehashi.access": {"handlers": ["mine"], "propagate": False}},
        }
    )
    assert restore_logs() == ["kakehashi", "kakehashi.error"]  # the unnamed ones
    logging.getLogger("kakehashi.access").info("a line")
    logging.getLogger("kakehashi.error").info("an error")
    assert routed.getvalue() == "ROUTED a line\n"
    assert access.getvalue() == "" and errors.getvalue() == "an error\n"


def test_a_config_naming_the_parent_is_followed(ours: tuple[io.StringIO, io.StringIO]) -> None:
    errors, access = ours
    routed = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "handlers": {"mine": {"class": "logging.StreamHandler", "stream": routed}},
            "loggers": {"kakehashi": {"handlers": ["mine"], "level": "INFO"}},
        }
    )
    # Its children are reset by dictConfig (no handlers, propagating): theirs to route.
    assert restore_logs() == []
    logging.getLogger("kakehashi.access").info("a line")
    logging.getLogger("kakehashi.error").info("an error")
    assert routed.getvalue() == "a line\nan error\n"
    assert access.getvalue() == "" and errors.getvalue() == ""


def test_basic_config_force_and_logging_shutdown_leave_ours_working(
    ours: tuple[io.StringIO, io.StringIO],
) -> None:
    errors, access = ours
    logging.basicConfig(force=True, stream=io.StringIO())
    logging.shutdown()  # closes every handler of the process, ours too
    logging.getLogger("kakehashi.access").info("after")
    logging.getLogger("kakehashi.error").warning("still")
    assert wait_until(lambda: access.getvalue() == "after\n")
    assert errors.getvalue() == "still\n"
