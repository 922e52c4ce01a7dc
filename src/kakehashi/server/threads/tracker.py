"""The thread engine as the process manager runs it: the application wrapped to count its
requests and see which are running (``--max-requests``, ``--timeout``, ``--shutdown-delay``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kakehashi.wsgi import FileWrapper, WSGIApp

__all__ = ["RequestTracker"]


class RequestTracker:
    """Wraps the application to count requests and see which are running, and since when.

    Lists, tuples and file wrappers pass through untouched (the server frames them itself);
    any other iterable is wrapped: each chunk it yields is progress, and its ``close()`` marks
    the request as finished.  A request is stuck when it has made no progress for a while.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._ids = itertools.count(1)
        self.started = 0
        self.running: dict[int, tuple[str, float]] = {}  # single dict operations only
        self.closing = False  # set once (--shutdown-delay): responses ask for a new connection

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.closing:
            start_response = _closing(start_response)
        key = self.started = next(self._ids)
        line = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        self.running[key] = (line, time.monotonic())
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.running.pop(key, None)
            raise
        if type(result) in (list, tuple) or type(result) is FileWrapper:
            self.running.pop(key, None)
            return result
        return _Finishing(result, self, key)

    def stuck(self, threads: int, timeout: float) -> list[str]:
        """The requests holding every thread with no progress for ``timeout``, else nothing."""
        now = time.monotonic()
        running = list(self.running.values())
        if timeout <= 0 or len(running) < threads:
            return []
        if all(now - since > timeout for _, since in running):
            return [f"{line} ({now - since:.1f}s)" for line, since in running]
        return []


def _closing(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """``start_response`` that adds ``Connection: close`` (the framing then closes after it)."""

    def closing(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        if not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        return start_response(status, headers, *exc_info)

    return closing


class _Finishing:
    """A streamed response: each chunk counts as progress, ``close()`` as the end."""

    __slots__ = ("_key", "_result", "_tracker")

    def __init__(self, result: Iterable[bytes], tracker: RequestTracker, key: int) -> None:
        self._result = result
        self._tracker = tracker
        self._key = key

    def __iter__(self) -> Iterator[bytes]:
        running = self._tracker.running
        line = running[self._key][0]
        for chunk in self._result:
            running[self._key] = (line, time.monotonic())  # a stream that moves is not stuck
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._tracker.running.pop(self._key, None)
