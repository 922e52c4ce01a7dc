"""SendPace: what a client must keep up while a response waits for it to read.

No I/O here; the times come from the caller (``time.monotonic()``).  Two rules, both checked
only while output is queued for the client (a client that takes everything we have is never
too slow, and the clock restarts each time the queue fills again):

1. Progress: some byte must be taken every ``timeout`` seconds (``--send-timeout``).
2. Rate: in each window of ``window`` seconds (``--send-rate-window``) the client must take
   ``min_rate`` bytes a second on average (``--send-min-rate``), or everything that was queued
   when the window opened if that is less.  Windows are consecutive, not sliding, so the state
   is four numbers and a deadline can be computed without a history.

A parked channel takes no bytes, so the deadline computed when it parks stays exact until a
thread sends again; the sweeper acts on it (see channel.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SendPace"]


@dataclass(slots=True)
class SendPace:
    """The progress and rate rules for one connection's queued output."""

    timeout: float
    min_rate: int
    window: float
    sent: int = 0  # bytes taken while output was queued (for the log line)
    last_progress: float = 0.0
    window_start: float = 0.0
    window_sent: int = 0
    window_need: int = 0

    def begin(self, now: float, queued: int) -> None:
        """Output starts waiting for the client: both clocks start now."""
        self.last_progress = now
        self._open_window(now, queued)

    def _open_window(self, start: float, queued: int) -> None:
        self.window_start = start
        self.window_sent = 0
        self.window_need = min(int(self.min_rate * self.window), queued)

    def record(self, count: int, now: float) -> None:
        """``count`` bytes were just taken by the client."""
        if count:
            self.sent += count
            self.window_sent += count
            self.last_progress = now

    def broken(self, now: float, queued: int) -> str:
        """Which rule the client has broken by ``now`` ('' if none); opens due windows."""
        if now - self.last_progress >= self.timeout:
            return f"no progress for {self.timeout:g} s"
        while now >= self.window_start + self.window:
            if self.window_sent < self.window_need:
                return f"below {self.min_rate} B/s over {self.window:g} s"
            self._open_window(self.window_start + self.window, queued)
        return ""

    def deadline(self) -> float:
        """When a client that takes nothing more breaks a rule."""
        window_end = self.window_start + self.window
        if self.window_sent >= self.window_need:  # this window is met; the next one is not
            window_end += self.window
        return min(self.last_progress + self.timeout, window_end)
