"""URL converters: how a ``<conv:name>`` placeholder in a rule matches and converts a value.

A converter says which text it accepts (``regex``, matched against the *whole* decoded path
segment, or against several segments joined by ``/`` when ``spans_segments`` is true), how
specific it is (``weight``: lower is tried first), how to turn the text into a Python value
(``to_python``; raising ``ValueError`` means "no match", never an error page) and back
(``to_url``, the text before percent-encoding).

This module must not know about requests, responses or the router's data structures.

Invariants: converters are stateless, so one instance may serve every rule; two converters
of the same class are interchangeable; ``to_url(to_python(s))`` matches ``regex`` again.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

__all__ = [
    "DEFAULT_CONVERTERS",
    "Converter",
    "FloatConverter",
    "IntegerConverter",
    "PathConverter",
    "StringConverter",
    "UUIDConverter",
]


class Converter:
    """Base class of every converter; subclass it and set ``regex`` and ``weight``.

    ``weight`` orders the dynamic candidates at one position in a rule: the lowest weight is
    tried first.  Two different converters with the same weight at the same position make
    the rules ambiguous, and the router refuses the second one.
    """

    regex: ClassVar[str] = r"[^/]+"
    weight: ClassVar[int] = 100
    spans_segments: ClassVar[bool] = False

    def __init__(self) -> None:
        self.pattern = re.compile(self.regex)

    def accepts(self, text: str) -> bool:
        return self.pattern.fullmatch(text) is not None

    def to_python(self, value: str) -> Any:
        return value

    def to_url(self, value: Any) -> str:
        return str(value)


class StringConverter(Converter):
    """Any non-empty text without a slash; the default when no converter is named."""

    regex = r"[^/]+"
    weight = 100


class IntegerConverter(Converter):
    """Non-negative decimal integers written with ASCII digits, e.g. ``42``."""

    regex = r"[0-9]+"
    weight = 20

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"int converter needs a non-negative int, not {value!r}")
        return str(value)


class FloatConverter(Converter):
    """Non-negative decimals with a point, e.g. ``1.5``; ``1`` alone is not a float here."""

    regex = r"[0-9]+\.[0-9]+"
    weight = 30

    def to_python(self, value: str) -> float:
        return float(value)

    def to_url(self, value: Any) -> str:
        number = float(value)
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"float converter needs a finite non-negative number, not {value!r}")
        return repr(number)


class UUIDConverter(Converter):
    """A UUID in its canonical 8-4-4-4-12 hexadecimal form."""

    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    weight = 10

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)


class PathConverter(Converter):
    """One or more segments, slashes included, e.g. ``docs/2024/index.html``.

    Empty segments are refused, so ``a//b`` never reaches a view through a path converter.
    ``..`` segments are not: never join the value to a filesystem path without checking it.
    A rule may hold at most one converter that spans segments.
    """

    regex = r"[^/]+(?:/[^/]+)*"
    weight = 200
    spans_segments = True


DEFAULT_CONVERTERS: dict[str, type[Converter]] = {
    "default": StringConverter,
    "string": StringConverter,
    "str": StringConverter,
    "int": IntegerConverter,
    "float": FloatConverter,
    "path": PathConverter,
    "uuid": UUIDConverter,
}
