"""Small containers the framework hands to views: a multi-dict, headers, uploaded files.

``MultiDict`` keeps every value of a repeated key (``?tag=a&tag=b``) while ``md[key]`` gives
the first, which is what a view wants nine times in ten.  ``Headers`` is an ordered list of
``(name, value)`` pairs looked up without regard to case.

This module must not parse anything from the wire; it only stores what others parsed.

Invariants: insertion order is kept; ``Headers`` never holds a CR, LF or NUL in a value or a
name that is not an HTTP token (checked on insert, so a response cannot smuggle a header).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Generic, TypeVar, overload

__all__ = ["FileStorage", "Headers", "MultiDict"]

V = TypeVar("V")
D = TypeVar("D")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_COPY_BLOCK = 64 * 1024


class MultiDict(Mapping[str, V], Generic[V]):
    """A read-only mapping from keys to their first value, with every value kept."""

    def __init__(self, pairs: Iterable[tuple[str, V]] = ()) -> None:
        self._data: dict[str, list[V]] = {}
        for key, value in pairs:
            self._data.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> V:
        return self._data[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def getall(self, key: str) -> list[V]:
        """Every value of ``key`` in order; an empty list when it is absent."""
        return list(self._data.get(key, ()))

    def multi_items(self) -> list[tuple[str, V]]:
        return [(key, value) for key, values in self._data.items() for value in values]

    def __repr__(self) -> str:
        return f"MultiDict({self.multi_items()!r})"


class Headers:
    """Ordered header pairs; lookups ignore case, ``set`` replaces, ``add`` appends."""

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        self._pairs: list[tuple[str, str]] = []
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        value = str(value)
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid character in the value of header {name!r}")
        self._pairs.append((name, value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def setdefault(self, name: str, value: str) -> None:
        if name not in self:
            self.add(name, value)

    def remove(self, name: str) -> None:
        lowered = name.lower()
        self._pairs = [(n, v) for n, v in self._pairs if n.lower() != lowered]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: D) -> str | D: ...
    def get(self, name: str, default: D | None = None) -> str | D | None:
        lowered = name.lower()
        for n, v in self._pairs:
            if n.lower() == lowered:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for n, v in self._pairs if n.lower() == lowered]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._pairs))

    def __len__(self) -> int:
        return len(self._pairs)

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


class FileStorage:
    """One uploaded file from a multipart form.

    ``stream`` is a binary file object: the parser gives a ``SpooledTemporaryFile`` (memory
    up to the app's ``UPLOAD_SPOOL_SIZE``, a temporary file beyond).  The request closes it
    when the request ends, so save or read it in the view.  ``filename`` is what the client
    claims; never use it as a path unchecked.
    """

    def __init__(
        self, name: str, filename: str, content_type: str, stream: IO[bytes] | bytes
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.stream: IO[bytes] = io.BytesIO(stream) if isinstance(stream, bytes) else stream

    def __repr__(self) -> str:
        return f"<FileStorage {self.name!r}: {self.filename!r} ({self.content_type})>"

    def read(self, size: int = -1) -> bytes:
        """Read from the stream's current position, like a file."""
        return self.stream.read(size)

    @property
    def data(self) -> bytes:
        """The whole content; the stream's position is left where it was."""
        out = io.BytesIO()
        self.save(out)
        return out.getvalue()

    def save(self, destination: str | os.PathLike[str] | IO[bytes]) -> None:
        """Write the whole content to a path (created or replaced) or a binary file object;
        the stream's position is left where it was."""
        position = self.stream.tell()
        self.stream.seek(0)
        try:
            if isinstance(destination, str | os.PathLike):
                with open(destination, "wb") as out:
                    shutil.copyfileobj(self.stream, out, _COPY_BLOCK)
            else:
                shutil.copyfileobj(self.stream, destination, _COPY_BLOCK)
        finally:
            self.stream.seek(position)

    def __len__(self) -> int:
        position = self.stream.tell()
        size = self.stream.seek(0, io.SEEK_END)
        self.stream.seek(position)
        return size

    def close(self) -> None:
        self.stream.close()
