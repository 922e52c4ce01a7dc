from __future__ import annotations

import pytest

from kakehashi.app import FileStorage, Headers, MultiDict
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
