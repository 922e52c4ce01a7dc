"""Header fields: an ordered, case-insensitive view over ``(name, value)`` byte pairs.

No I/O here.  Fields keep the order and spelling they arrived in, repeated fields included
(RFC 9110 §5.3); lookups ignore case.  Received fields are already validated by the parser;
fields built by the application are validated by :func:`validate_fields` before they are
written, so CR, LF or NUL can never reach the wire.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from kakehashi.errors import LocalProtocolError
from kakehashi.http1._abnf import FIELD_VALUE, TOKEN

_NAME_RE = re.compile(TOKEN)
_VALUE_RE = re.compile(b"(?:" + FIELD_VALUE + b")?")

__all__ = ["Headers", "validate_fields"]


class Headers:
    """An immutable, ordered list of header fields with case-insensitive lookup.

    Args:
        fields: ``(name, value)`` pairs of bytes, in wire order.
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._fields: list[tuple[bytes, bytes]] = list(fields)
        self._index: dict[bytes, list[bytes]] | None = None

    def _lookup(self) -> dict[bytes, list[bytes]]:
        # Built on first lookup only: the server's hot path iterates and never looks up.
        index = self._index
        if index is None:
            index = {}
            for name, value in self._fields:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The field's value; repeated fields are joined with ``", "`` (RFC 9110 §5.3)."""
        values = self._lookup().get(name.lower())
        if not values:
            return default
        return values[0] if len(values) == 1 else b", ".join(values)

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of the field, in order, one entry per field line."""
        return list(self._lookup().get(name.lower(), ()))

    def get_list(self, name: bytes) -> list[bytes]:
        """The comma-separated elements of a list field, trimmed, empty ones dropped."""
        items: list[bytes] = []
        for value in self._lookup().get(name.lower(), ()):
            items.extend(item.strip(b" \t") for item in value.split(b","))
        return [item for item in items if item]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, bytes) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._fields == other._fields

    def __hash__(self) -> int:
        return hash(tuple(self._fields))

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def raw(self) -> list[tuple[bytes, bytes]]:
        """A copy of the fields as received."""
        return list(self._fields)


def validate_fields(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Check fields this side is about to send.

    Raises:
        LocalProtocolError: a name is not a token, or a value holds CR, LF, NUL, another
            control byte, or leading/trailing whitespace.
    """
    checked = []
    for name, value in fields:
        if _NAME_RE.fullmatch(name) is None:
            raise LocalProtocolError(f"illegal header name {name!r}")
        if _VALUE_RE.fullmatch(value) is None:
            raise LocalProtocolError(f"illegal header value {value!r} for {name!r}")
        checked.append((name, value))
    return checked
