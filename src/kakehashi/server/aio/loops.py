"""Which event loop runs the ASGI engine (``--loop``).

``auto`` takes uvloop when it can be imported and asyncio's own loop otherwise; the engine's
code is the same on both.  The runtime needs only the standard library: uvloop is an
optional extra (``pip install 'kakehashi[uvloop]'``).
"""

from __future__ import annotations

import asyncio
import importlib

from kakehashi.errors import ConfigError

__all__ = ["new_loop"]


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
    return asyncio.new_event_loop(), "asyncio"
