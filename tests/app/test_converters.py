from __future__ import annotations

import uuid

import pytest

from kakehashi.app import (
    Converter,
    FloatConverter,
    IntegerConverter,
    PathConverter,
    StringConverter,
    UUIDConverter,
)


@pytest.mark.parametrize(
    ("converter", "text", "accepted"),
    [
        (StringConverter, "abc", True),
        (StringConverter, "太郎", True),
        (StringConverter, "", False),
        (StringConverter, "a/b", False),
        (IntegerConverter, "42", True),
        (IntegerConverter, "-1", False),
        (IntegerConverter, "٣", False),  # non-ASCII digits are not an int here
        (IntegerConverter, "1.5", False),
        (FloatConverter, "1.5", True),
        (FloatConverter, "1", False),
        (FloatConverter, "1.", False),
        (PathConverter, "a/b/c", True),
        (PathConverter, "a//b", False),
        (PathConverter, "", False),
        (UUIDConverter, "12345678-1234-5678-1234-567812345678", True),
        (UUIDConverter, "12345678123456781234567812345678", False),
    ],
)
def test_accepts(converter: type[Converter], text: str, accepted: bool) -> None:
    assert converter().accepts(text) is accepted


def test_to_python_and_back() -> None:
    assert IntegerConverter().to_python("007") == 7
    assert FloatConverter().to_python("2.50") == 2.5
    value = UUIDConverter().to_python("12345678-1234-5678-1234-567812345678")
    assert isinstance(value, uuid.UUID)
    assert UUIDConverter().to_url(value) == "12345678-1234-5678-1234-567812345678"
    assert FloatConverter().to_url(2.5) == "2.5"
    assert IntegerConverter().to_url(7) == "7"


@pytest.mark.parametrize("bad", [-1, True, "7", 1.0])
def test_int_to_url_refuses_non_ints(bad: object) -> None:
    with pytest.raises(ValueError):
        IntegerConverter().to_url(bad)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_float_to_url_refuses_odd_numbers(bad: float) -> None:
    with pytest.raises(ValueError):
        FloatConverter().to_url(bad)


def test_weights_order_specific_first() -> None:
    weights = [c.weight for c in (UUIDConverter, IntegerConverter, FloatConverter)]
    assert weights == sorted(weights)
    assert max(weights) < StringConverter.weight < PathConverter.weight
