"""``--reload``: notice that a source file of the running code changed, by polling ``stat``.

Watches the files of every module imported so far plus ``--reload-extra-file``; the worker's
heartbeat thread asks :meth:`FileWatcher.changed` once per tick and tells the arbiter, which
replaces the workers the rolling way.  A new worker that cannot import the changed code fails
to boot, and the old one keeps serving (arbiter.py).  Standard library only, no inotify.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

__all__ = ["FileWatcher"]


class FileWatcher:
    """Remembers each file's modification time; owned by the heartbeat thread."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = tuple(extra)
        self.mtimes: dict[str, float] = {}
        self.changed()  # the baseline

    def files(self) -> list[str]:
        paths = list(self.extra)
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                paths.append(path)
        return paths

    def changed(self) -> str | None:
        """The first watched file whose modification time moved since the last call."""
        first = None
        for path in self.files():
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            before = self.mtimes.setdefault(path, mtime)
            if before != mtime:
                self.mtimes[path] = mtime
                first = first or path
        return first
