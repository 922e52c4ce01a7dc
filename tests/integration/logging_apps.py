"""Applications that do things to ``logging`` when they are loaded or serve, for
test_logging_survives_app.py: each is ``kakehashi serve tests.integration.logging_apps:NAME()``
(a factory, so that only the one asked for touches ``logging``)."""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from tests.server_apps import hello

App = Callable[..., Any]


def django() -> App:
    """tests/django_site.py at default settings: ``django.setup()`` applies Django's
    DEFAULT_LOGGING with ``logging.config.dictConfig``, closing every handler."""
    from tests import django_site

    app = django_site.application()
    if not any(handler.name == "console" for handler in logging.getLogger("django").handlers):
        raise RuntimeError("Django did not configure logging: the test would prove nothing")
    return app


def rerouted() -> App:
    """Routes ``kakehashi.access`` to a file of its own (``KAKEHASHI_ROUTED_LOG``) with its
    formatter; every other existing logger is switched off (the default)."""
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": {"tagged": {"format": "ROUTED %(message)s"}},
            "handlers": {
                "mine": {
                    "class": "logging.FileHandler",
                    "filename": os.environ["KAKEHASHI_ROUTED_LOG"],
                    "formatter": "tagged",
                }
            },
            "loggers": {"kakehashi.access": {"handlers": ["mine"], "propagate": False}},
        }
    )
    return hello


def rude() -> App:
    """What an application may do bluntly: ``basicConfig(force=True)``, then
    ``logging.shutdown()`` (every handler of the process closed)."""
    logging.basicConfig(force=True, level=logging.INFO, stream=sys.stdout)
    logging.shutdown()
    return hello


def lazy() -> App:
    """Configures logging on its first request, as an application with lazy setup does:
    existing loggers switched off, while the server is serving."""
    done = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if not done.is_set():
            done.set()
            logging.config.dictConfig(
                {
                    "version": 1,
                    "handlers": {"app": {"class": "logging.StreamHandler", "stream": sys.stdout}},
                    "root": {"level": "INFO", "handlers": ["app"]},
                }
            )
        return hello(environ, start_response)

    return app
