"""RequestWatch: which thread runs which request since when, so stuck requests are seen.

A request that runs past ``--request-timeout`` is logged once at WARNING with its request
line, peer, elapsed time and the stack of the thread running it (``sys._current_frames``):
the line an operator needs to find the query or the lock that hangs.  Nothing is killed
here (Python cannot stop a thread); with ``--workers`` the process manager replaces a
worker whose threads are all stuck.

Shared by worker threads (each adds and removes its own entry: single dict operations,
atomic under the GIL) and read by the sweeper thread.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from kakehashi.http1 import Request

__all__ = ["RequestWatch", "Running"]


@dataclass(eq=False)
class Running:
    """One request in progress."""

    request: Request
    peer: tuple[str, int]
    started: float = field(default_factory=time.monotonic)
    warned: bool = False

    @property
    def line(self) -> str:
        target = self.request.target.decode("latin-1")
        return f"{self.request.method.decode('latin-1')} {target}"


class RequestWatch:
    """The requests running now, by thread ident."""

    __slots__ = ("running",)

    def __init__(self) -> None:
        self.running: dict[int, Running] = {}

    def begin(self, request: Request, peer: tuple[str, int]) -> int:
        ident = threading.get_ident()
        self.running[ident] = Running(request, peer)
        return ident

    def end(self, ident: int) -> None:
        self.running.pop(ident, None)

    def overdue(self, timeout: float) -> list[tuple[int, Running, str]]:
        """Requests running longer than ``timeout`` not reported yet, with their stacks;
        each is marked reported."""
        now = time.monotonic()
        found = []
        frames = None
        for ident, entry in list(self.running.items()):
            if entry.warned or now - entry.started < timeout:
                continue
            if frames is None:
                frames = sys._current_frames()
            frame = frames.get(ident)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            entry.warned = True
            found.append((ident, entry, stack))
        return found
