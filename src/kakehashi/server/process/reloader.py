"""``--reload``: notice that a source file of the running code changed, by polling ``stat``.

Watches the files of every module imported so far plus ``--reload-extra-file``; the worker's
heartbeat thread asks :meth:`FileWatcher.changed` once per tick and tells the arbiter, which
replaces the workers the rolling way.  A new worker that cannot import the changed code fails
to boot, and the old one keeps serving (arbiter.py).  A worker that cannot import the
application at start waits instead of exiting: it watches the files its traceback names and
the modules it did import, and asks to be replaced once one changes (worker.py).  Standard
library only, no inotify.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType

__all__ = ["FileWatcher", "files_of", "format_import_error"]

import kakehashi

_OURS = os.path.dirname(os.path.abspath(kakehashi.__file__))  # the kakehashi package
_IMPORTLIB = os.path.dirname(os.path.abspath(importlib.__file__))


def _is_machinery(filename: str) -> bool:
    """A frame of kakehashi's loading code or of importlib, not of the application."""
    if filename.startswith("<frozen importlib"):
        return True
    return os.path.abspath(filename).startswith((_OURS + os.sep, _IMPORTLIB + os.sep))


def format_import_error(exc: BaseException) -> str:
    """The traceback of an exception raised while importing (or calling the factory of) the
    application, from its first frame outside kakehashi and importlib: where it failed."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _is_machinery(_filename(tb)):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _filename(tb: TracebackType) -> str:
    return tb.tb_frame.f_code.co_filename


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def files_of(exc: BaseException) -> list[str]:
    """The source files an import failure involves: every frame of its tracebacks (the
    module that raised, those importing it) and a SyntaxError's file."""
    files: list[str] = []
    for link in _chain(exc):
        if isinstance(link, SyntaxError) and link.filename:
            files.append(link.filename)
        tb = link.__traceback__
        while tb is not None:
            name = _filename(tb)
            if not name.startswith("<") and not _is_machinery(name):
                files.append(name)
            tb = tb.tb_next
    return list(dict.fromkeys(files))


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
