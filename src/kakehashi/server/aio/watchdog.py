"""LoopWatchdog: says when the event loop is blocked, and by what.

An application that makes a blocking call inside ``async def`` (``time.sleep``, a sync
database driver, a large computation) stalls every connection of the process, and no
server says so.  Here a thread wakes every half of the threshold and looks at a counter the
loop bumps as it works (``AioContext.progress``: each read from a client, each sweep):

1. It moved: the loop runs.  Nothing is asked of the loop, so a busy server pays nothing on
   its own thread.
2. It did not: the loop is idle or blocked.  The thread posts one callback
   (``call_soon_threadsafe``) that bumps the counter; an idle loop runs it at once.
3. Still not run a threshold later: blocked.  ``event loop blocked for N ms`` is logged
   once for that stall, at WARNING, with the loop thread's stack (``sys._current_frames``):
   the line to look at.  It is logged again only after the loop has run since.

Measured on this project's (shared, 2-core) VM, process CPU over 4 s of an idle loop: a
timer on the loop every quarter of the threshold (the first design) cost 1.2 ms a second at
0.5 s, about 150 µs a beat; this design costs 0.8 ms a second idle at the default 0.5 s
(3.8 ms at 0.1 s), and on a busy loop only the thread's 4 wake-ups a second (about 0.1 ms
each): hence the default, 0.5 s.

Threads: ``progress`` is written by the loop's thread only (an int, atomic under the GIL)
and read by the watchdog thread, which touches nothing else of the loop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable

from kakehashi.server.aio._shared import error_logger as logger

__all__ = ["LoopWatchdog"]


class LoopWatchdog:
    """Watches one loop, which runs on the thread that calls :meth:`start`.

    Args:
        loop: the loop.
        threshold: seconds of no progress that count as a stall.
        progress: reads the loop's progress counter.
        bump: makes progress (run on the loop, from the posted callback).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        threshold: float,
        progress: Callable[[], int],
        bump: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.progress = progress
        self.bump = bump
        self.beat = time.monotonic()  # when progress was last seen (the thread's view)
        self.stalls = 0  # stalls logged
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (a daemon thread); the caller's thread is the loop's."""
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(
            target=self._watch, name="kakehashi-loop-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _watch(self) -> None:
        seen = self.progress()
        posted = 0.0  # when the probe went to the loop (0: none pending)
        reported = False
        while not self._stop.wait(self.threshold / 2):
            now = time.monotonic()
            count = self.progress()
            if count != seen:
                seen, self.beat, posted, reported = count, now, 0.0, False
                continue
            if not posted:
                posted = now
                try:
                    self.loop.call_soon_threadsafe(self.bump)
                except RuntimeError:  # the loop closed
                    return
            elif now - posted >= self.threshold and not reported:
                reported = True
                self._report(now - self.beat)

    def _report(self, blocked: float) -> None:
        self.stalls += 1
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
        logger.warning(
            "event loop blocked for %d ms (a blocking call in async code stalls every "
            "connection); the loop's thread is at:\n%s",
            blocked * 1000,
            stack.rstrip(),
        )
