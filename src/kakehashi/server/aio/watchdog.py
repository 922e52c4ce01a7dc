"""LoopWatchdog: says when the event loop is blocked, and by what.

An application that makes a blocking call inside ``async def`` (``time.sleep``, a sync
database driver, a large computation) stalls every connection of the process, and no
server says so.  Here the loop stamps a heartbeat every quarter of the threshold (one timer
callback); a thread wakes every half of it and, when the last stamp is older than the
threshold, logs ``event loop blocked for N ms`` once for that stall, at WARNING, with the
loop thread's stack (``sys._current_frames``): the line to look at.  It logs again only
after the loop has beaten since (a new stall).

Threads: ``beat`` is written by the loop's thread only (a float assignment, atomic under
the GIL) and read by the watchdog thread; the thread touches nothing else of the loop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback

from kakehashi.server.aio._shared import error_logger as logger

__all__ = ["LoopWatchdog"]


class LoopWatchdog:
    """Watches one loop running on the thread that calls :meth:`start`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        self.loop = loop
        self.threshold = threshold
        self.beat = time.monotonic()
        self.stalls = 0  # stalls logged (for tests and the curious)
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating (on the loop's thread) and watching (a daemon thread)."""
        self._loop_thread = threading.get_ident()
        self._beat()
        self._thread = threading.Thread(
            target=self._watch, name="kakehashi-loop-watchdog", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        self.beat = time.monotonic()
        self._timer = self.loop.call_later(self.threshold / 4, self._beat)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _watch(self) -> None:
        reported = 0.0  # the beat of the stall already logged
        while not self._stop.wait(self.threshold / 2):
            beat = self.beat
            blocked = time.monotonic() - beat
            if blocked < self.threshold or beat == reported:
                continue
            reported = beat
            self.stalls += 1
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            logger.warning(
                "event loop blocked for %d ms (a blocking call in async code stalls every "
                "connection); the loop's thread is at:\n%s",
                blocked * 1000,
                stack.rstrip(),
            )
