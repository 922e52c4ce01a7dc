"""Which event loop runs the ASGI engine (``--loop``).

``auto`` takes uvloop when it can be imported and asyncio's own loop otherwise; the engine's
code is the same on both.  The runtime needs only the standard library: uvloop is an
optional extra (``pip install 'kakehashi[uvloop]'``).
"""

from __future__ import annotations

import asyncio
import importlib
import selectors
import sys
from typing import Any

from kakehashi.errors import ConfigError

__all__ = ["SparingSelector", "new_loop"]


class SparingSelector(selectors.DefaultSelector):
    """The platform's selector for asyncio's own loop, skipping every other zero-timeout poll.

    asyncio's loop polls on every pass, without waiting when callbacks are ready.  A read
    wakes the application's task through a future, and the task runs on the next pass: so
    every request or WebSocket message also paid a second poll, a system call a few
    microseconds after the first, which finds nothing the next pass would not.  A zero-timeout
    poll that comes right after a poll is skipped (no events); the one after it is made, and a
    poll that may wait is always made.  So I/O is still polled at least every other pass (ready
    callbacks cannot starve it), and what becomes ready meanwhile is seen one pass later.
    """

    _just_polled = False

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if self._just_polled and timeout is not None and timeout <= 0:
            self._just_polled = False
            return []
        self._just_polled = True
        return super().select(timeout)


def new_loop(name: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """A new event loop for ``--loop name``, and the name of what it is.

    Raises:
        ConfigError: ``uvloop`` was asked for and is not installed, or an unknown name.
    """
    if name not in ("auto", "asyncio", "uvloop"):
        raise ConfigError(f"--loop must be auto, asyncio or uvloop, not {name!r}")
    if name != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if name == "uvloop":
                raise ConfigError(
                    "--loop uvloop: uvloop is not installed (pip install 'kakehashi[uvloop]')"
                ) from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop, "uvloop"
    if sys.platform == "win32":  # its default is the proactor loop, which has no selector
        return asyncio.new_event_loop(), "asyncio"
    return asyncio.SelectorEventLoop(SparingSelector()), "asyncio"
