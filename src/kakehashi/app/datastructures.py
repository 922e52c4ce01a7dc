"""Small containers the framework hands to views: a multi-dict, headers, uploaded files.

``MultiDict`` keeps every value of a repeated key (``?tag=a&tag=b``) while ``md[key]`` gives
the first, which is what a view wants nine times in ten.  ``Headers`` is an ordered list of
``(name, value)`` fields looked up without regard to case, written like werkzeug's (``h[k] =
v`` replaces, ``del h[k]``, ``update``) with ``add``/``getall`` for repeated fields; a
request's are ``ReadOnlyHeaders``.

This module must not parse anything from the wire; it only stores what others parsed.

Invariants: insertion order is kept; ``Headers`` never holds a CR, LF or NUL in a value or a
name that is not an HTTP token (checked on insert, so a response cannot smuggle a header), and
a write that fails on one field changes nothing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Generic, TypeVar, overload

__all__ = ["FileStorage", "Headers", "MultiDict", "ReadOnlyHeaders"]

V = TypeVar("V")
D = TypeVar("D")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_COPY_BLOCK = 64 * 1024
_MISSING = object()


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
    """Header fields in order, looked up without regard to case; a mutable mapping where
    that is unambiguous, as in werkzeug.

    ``h[name]``, ``get`` and ``in`` see the first field of that name; ``h[name] = value``
    replaces every field of that name with one (at the first one's place); ``del h[name]``
    removes every field of that name (and nothing when there is none, as in werkzeug);
    ``update`` replaces each name it is given; ``add`` appends a field, and ``getall`` gives
    every value of a repeated field (``Set-Cookie``).  Iterating, ``items()`` and ``len()``
    see fields, so a repeated name counts once per field.  Values are ``str`` or ``int``.
    """

    # A subclass that is read-only (ReadOnlyHeaders) only turns this on.
    _read_only = False

    def __init__(self, pairs: HeaderSource = ()) -> None:
        if isinstance(pairs, Headers):  # checked when they were added
            self._pairs: list[tuple[str, str]] = list(pairs._pairs)
        else:
            self._pairs = [_checked(name, value) for name, value in _pairs_of(pairs)]

    # --- reading ---------------------------------------------------------------------------

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: D) -> str | D: ...
    def get(self, name: str, default: D | None = None) -> str | D | None:
        lowered = _lookup_name(name)
        for n, v in self._pairs:
            if n.lower() == lowered:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` in order; an empty list when it is absent."""
        lowered = _lookup_name(name)
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

    def keys(self) -> list[str]:
        """The name of each field, so a repeated name is there once per field."""
        return [n for n, _ in self._pairs]

    def values(self) -> list[str]:
        return [v for _, v in self._pairs]

    def copy(self) -> Headers:
        """A mutable copy (also of read-only request headers)."""
        return Headers(self._pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"

    # --- writing ---------------------------------------------------------------------------

    def add(self, name: str, value: str | int) -> None:
        """Append a field, keeping those of the same name (``Set-Cookie``)."""
        self._check_writable()
        self._pairs.append(_checked(name, value))

    def extend(self, pairs: HeaderSource) -> None:
        """Append every field of ``pairs``; nothing is added if one is invalid."""
        self._check_writable()
        checked = [_checked(name, value) for name, value in _pairs_of(pairs)]
        self._pairs.extend(checked)

    def set(self, name: str, value: str | int) -> None:
        """Replace every field of ``name`` with one; ``h[name] = value`` does the same."""
        self._check_writable()
        self._replace(name, [_checked(name, value)])

    def __setitem__(self, name: str, value: str | int) -> None:
        self.set(name, value)

    def setdefault(self, name: str, value: str | int) -> str:
        """The first value of ``name``; when there is none, ``value`` is added first."""
        self._check_writable()
        current = self.get(name)
        if current is not None:
            return current
        pair = _checked(name, value)
        self._pairs.append(pair)
        return pair[1]

    def update(
        self,
        other: HeaderSource = (),
        /,
        **fields: HeaderValue | list[HeaderValue] | tuple[HeaderValue, ...],
    ) -> None:
        """Replace each name given (by a mapping, pairs or keywords) with the values given
        for it; a name given several times in ``pairs``, or with a list or tuple of values
        in a mapping, keeps them all.  Nothing changes if one is invalid.

        Werkzeug keeps only the last of a name repeated in pairs; here all are kept, so
        ``h.update(other_headers)`` carries a repeated ``Set-Cookie`` over whole.
        """
        self._check_writable()
        given: dict[str, list[tuple[str, str]]] = {}
        for name, value in [*_pairs_of(other), *_pairs_of(fields)]:
            pair = _checked(name, value)
            given.setdefault(pair[0].lower(), []).append(pair)
        for pairs in given.values():
            self._replace(pairs[0][0], pairs)

    def remove(self, name: str) -> None:
        """Remove every field of ``name``; nothing happens when there is none."""
        self._check_writable()
        self._replace(name, [])

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    @overload
    def pop(self, name: str) -> str: ...
    @overload
    def pop(self, name: str, default: D) -> str | D: ...
    def pop(self, name: str, default: object = _MISSING) -> object:
        """Remove every field of ``name`` and return the first value (``KeyError`` when
        there is none and no default was given)."""
        self._check_writable()
        value = self.get(name)
        if value is None:
            if default is _MISSING:
                raise KeyError(name)
            return default
        self._replace(name, [])
        return value

    def clear(self) -> None:
        self._check_writable()
        self._pairs.clear()

    def _replace(self, name: str, pairs: list[tuple[str, str]]) -> None:
        """Put ``pairs`` where the first field of ``name`` was (at the end when there was
        none) and drop the others of that name; the order of the other fields is kept."""
        lowered = _lookup_name(name)
        kept: list[tuple[str, str]] = []
        at = -1
        for pair in self._pairs:
            if pair[0].lower() == lowered:
                at = len(kept) if at < 0 else at
            else:
                kept.append(pair)
        at = len(kept) if at < 0 else at
        kept[at:at] = pairs
        self._pairs = kept

    def _check_writable(self) -> None:
        if self._read_only:
            raise TypeError(
                "the request's headers are read-only: they are what the client sent "
                "(use .copy() for a mutable copy)"
            )


class ReadOnlyHeaders(Headers):
    """A request's headers: every way of changing them raises ``TypeError``.

    They are what the client sent; ``Request.cookies``, ``mimetype`` and the form parser
    read them once and keep the result, so a change would be seen by some and not others.
    """

    _read_only = True


HeaderValue = str | int
HeaderSource = (
    Headers
    | Mapping[str, HeaderValue | list[HeaderValue] | tuple[HeaderValue, ...]]
    | Iterable[tuple[str, HeaderValue]]
)


def _pairs_of(source: HeaderSource) -> Iterator[tuple[str, HeaderValue]]:
    """The fields of a mapping (a list or tuple value gives one field per item), of
    ``Headers`` or of an iterable of pairs."""
    if isinstance(source, Mapping):
        for name, value in source.items():
            if isinstance(value, list | tuple):
                for item in value:
                    yield name, item
            else:
                yield name, value
    elif isinstance(source, str | bytes):
        raise TypeError("headers must be a mapping or (name, value) pairs, not a string")
    else:
        for pair in source:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"a header must be a (name, value) pair, not {pair!r}")
            yield pair[0], pair[1]


def _lookup_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a header name is a str, not {type(name).__name__}")
    return name.lower()


def _checked(name: object, value: object) -> tuple[str, str]:
    """``(name, value as str)``; ``TypeError`` for a wrong type, ``ValueError`` for a name
    that is not an HTTP token or a value with CR, LF or NUL (a smuggled header)."""
    if not isinstance(name, str):
        raise TypeError(f"a header name is a str, not {type(name).__name__}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    # bool is an int, but "True" is never a header value anyone meant.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"the value of header {name!r} is a str or int, not {type(value).__name__}")
    text = str(value)
    if _BAD_VALUE.search(text):
        raise ValueError(f"invalid character in the value of header {name!r}")
    return name, text


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
