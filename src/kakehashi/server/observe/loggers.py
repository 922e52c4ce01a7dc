"""The server's two loggers, named as gunicorn's are: ``kakehashi.error`` (start, stop, faults)
and ``kakehashi.access`` (one line per response, see accesslog.py).  Every room and engine
logs through these, so an operator configures two names whatever runs."""

from __future__ import annotations

import logging

__all__ = ["access_logger", "error_logger"]

access_logger = logging.getLogger("kakehashi.access")
error_logger = logging.getLogger("kakehashi.error")
