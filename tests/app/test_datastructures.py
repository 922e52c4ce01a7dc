from __future__ import annotations

from typing import Any

import pytest

from kakehashi.app import FileStorage, Headers, MultiDict, ReadOnlyHeaders
from kakehashi.app.forms import parse_options_header, parse_urlencoded
from kakehashi.errors import BadRequest


def test_multidict() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md["a"] == 1
    assert md.getall("a") == [1, 3]
    assert list(md) == ["a", "b"]
    assert md.multi_items() == [("a", 1), ("a", 3), ("b", 2)]
    assert dict(md) == {"a": 1, "b": 2}


def test_headers() -> None:
    headers = Headers({"X-A": "1"})
    headers.add("x-a", "2")
    headers.setdefault("X-A", "3")
    assert headers.getall("X-a") == ["1", "2"]
    headers.set("X-A", "4")
    assert headers.items() == [("X-A", "4")]
    assert len(headers) == 1
    assert list(headers) == [("X-A", "4")]
    assert 3 not in headers
    assert "Headers" in repr(headers)


def test_setitem_replaces_every_field_of_the_name_at_the_first_ones_place() -> None:
    headers = Headers([("X-A", "1"), ("B", "2"), ("x-a", "3")])
    headers["x-A"] = "v"
    assert headers.items() == [("x-A", "v"), ("B", "2")]
    headers["New"] = 5  # an int becomes its decimal text
    assert headers.items() == [("x-A", "v"), ("B", "2"), ("New", "5")]


def test_delitem_removes_every_field_of_the_name_and_ignores_an_absent_one() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("B", "2"), ("set-cookie", "b=2")])
    del headers["SET-COOKIE"]
    assert headers.items() == [("B", "2")]
    del headers["Absent"]  # as werkzeug: nothing to remove is not an error
    assert headers.items() == [("B", "2")]


def test_reading_like_a_mapping() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Vary", "Accept"), ("set-cookie", "b=2")])
    assert headers["set-cookie"] == headers.get("SET-COOKIE") == "a=1"
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers.get("Absent") is None
    assert headers.get("Absent", "fallback") == "fallback"
    assert "vary" in headers and "Absent" not in headers and 3 not in headers
    assert len(headers) == 3  # fields, not names
    assert (
        list(headers) == headers.items() == list(zip(headers.keys(), headers.values(), strict=True))
    )
    assert headers.keys() == ["Set-Cookie", "Vary", "set-cookie"]
    assert dict(headers) == {"Set-Cookie": "a=1", "Vary": "Accept", "set-cookie": "a=1"}
    with pytest.raises(KeyError, match="Absent"):
        headers["Absent"]


def test_setdefault_returns_the_value_and_adds_only_when_absent() -> None:
    headers = Headers([("X-A", "1"), ("x-a", "2")])
    assert headers.setdefault("X-a", "3") == "1"
    assert headers.setdefault("X-B", 4) == "4"
    assert headers.items() == [("X-A", "1"), ("x-a", "2"), ("X-B", "4")]


def test_update_replaces_each_name_given_and_keeps_repeated_ones_whole() -> None:
    headers = Headers([("Vary", "Accept"), ("Set-Cookie", "old=1"), ("X-Keep", "k")])
    headers.update([("set-cookie", "a=1"), ("Set-Cookie", "b=2")], vary="Origin")
    assert headers.items() == [
        ("vary", "Origin"),
        ("set-cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Keep", "k"),
    ]
    headers.update({"X-Keep": ["1", 2], "X-New": "n"})
    assert headers.getall("x-keep") == ["1", "2"]
    assert headers["X-New"] == "n"
    other = Headers([("Set-Cookie", "c=3"), ("Set-Cookie", "d=4")])
    headers.update(other)
    assert headers.getall("Set-Cookie") == ["c=3", "d=4"]


def test_pop_clear_copy_extend() -> None:
    headers = Headers([("A", "1"), ("a", "2"), ("B", "3")])
    assert headers.pop("A") == "1"
    assert headers.items() == [("B", "3")]
    assert headers.pop("A", None) is None
    with pytest.raises(KeyError, match="A"):
        headers.pop("A")
    copy = headers.copy()
    copy.extend([("C", "4"), ("C", "5")])
    assert headers.items() == [("B", "3")]
    assert copy.getall("c") == ["4", "5"]
    copy.clear()
    assert len(copy) == 0 and list(copy) == []


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "Ünicode", "X\r\nY", "(x)"])
def test_bad_name_is_a_value_error_and_changes_nothing(name: str) -> None:
    headers = Headers([("A", "1")])
    for write in (
        lambda: headers.__setitem__(name, "v"),
        lambda: headers.add(name, "v"),
        lambda: headers.setdefault(name, "v"),
        lambda: headers.update([("B", "2"), (name, "v")]),
        lambda: headers.extend([("B", "2"), (name, "v")]),
    ):
        with pytest.raises(ValueError, match="invalid header name"):
            write()
    assert headers.items() == [("A", "1")]


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "a\r\nSet-Cookie: x=1"])
def test_value_with_cr_lf_or_nul_is_a_value_error_and_changes_nothing(value: str) -> None:
    headers = Headers([("A", "1")])
    for write in (
        lambda: headers.__setitem__("A", value),
        lambda: headers.add("B", value),
        lambda: headers.update({"B": "2", "A": value}),
        lambda: headers.update(A=["ok", value]),
    ):
        with pytest.raises(ValueError, match="invalid character in the value of header"):
            write()
    assert headers.items() == [("A", "1")]
    with pytest.raises(ValueError):
        Headers({"A": value})


@pytest.mark.parametrize("value", [None, b"bytes", True, 1.5, ["a", "b"], object()])
def test_value_of_another_type_is_a_type_error(value: Any) -> None:
    headers = Headers()
    with pytest.raises(TypeError, match="the value of header 'X-A' is a str or int"):
        headers["X-A"] = value
    with pytest.raises(TypeError, match="is a str or int"):
        headers.add("X-A", value)
    assert len(headers) == 0


@pytest.mark.parametrize("source", ["A: 1", [("A", "1", "extra")], ["AB"], [b"A1"]])
def test_headers_from_something_that_is_not_pairs_is_a_type_error(source: Any) -> None:
    with pytest.raises(TypeError, match="name, value"):
        Headers(source)


def test_name_of_another_type_is_a_type_error() -> None:
    headers = Headers([("A", "1")])
    with pytest.raises(TypeError, match="a header name is a str, not int"):
        headers[1]
    with pytest.raises(TypeError, match="a header name is a str, not bytes"):
        headers[b"A"] = "v"  # type: ignore[index]
    assert headers.get("A") == "1"


def test_read_only_headers_refuse_every_change() -> None:
    headers = ReadOnlyHeaders([("Accept", "*/*")])
    for write in (
        lambda: headers.__setitem__("A", "v"),
        lambda: headers.__delitem__("Accept"),
        lambda: headers.add("A", "v"),
        lambda: headers.set("A", "v"),
        lambda: headers.setdefault("A", "v"),
        lambda: headers.update(A="v"),
        lambda: headers.extend([("A", "v")]),
        lambda: headers.remove("Accept"),
        lambda: headers.pop("Accept"),
        lambda: headers.clear(),
    ):
        with pytest.raises(TypeError, match="read-only"):
            write()
    assert headers.items() == [("Accept", "*/*")]
    copy = headers.copy()
    copy["Accept"] = "text/html"
    assert type(copy) is Headers and copy["accept"] == "text/html"
    assert headers["Accept"] == "*/*"


def test_file_storage_length() -> None:
    assert len(FileStorage("f", "a.txt", "text/plain", b"abc")) == 3


def test_options_header() -> None:
    assert parse_options_header('Text/HTML; Charset="utf-8"; q=0.5; flag') == (
        "text/html",
        {"charset": "utf-8", "q": "0.5", "flag": ""},
    )
    assert parse_options_header('a; name="semi;colon \\"quoted\\""') == (
        "a",
        {"name": 'semi;colon "quoted"'},
    )


def test_too_many_fields_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_urlencoded("&".join(["a=1"] * 10_001))
