"""params=, data=, json= and files= on every method, and Response.json(), against Flask served
by kakehashi's own server: what Flask parses is what the client meant to send."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from kakehashi import client
from kakehashi.client import Client
from kakehashi.client.payloads import add_params, encode_payload
from kakehashi.server import Server
from tests.client import flask_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.fixture
def base(start_server: Callable[..., Server]) -> str:
    return "http://" + start_server(flask_app.app).addresses[0]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_takes_params_data_json_and_files(base: str, method: str) -> None:
    name = method.lower()
    with Client(timeout=5) as c:
        send = getattr(c, name)
        r = send(base + "/inspect?x=0", params={"q": "太郎", "n": [1, 2], "on": True})
        assert r.json()["args"] == {"x": ["0"], "q": ["太郎"], "n": ["1", "2"], "on": ["true"]}
        r = send(base + "/inspect", data={"name": "taro", "tags": ["a", "b"]})
        assert r.json()["form"] == {"name": ["taro"], "tags": ["a", "b"]}
        assert r.json()["content_type"] == "application/x-www-form-urlencoded"
        r = send(base + "/inspect", json={"name": "太郎", "n": [1, None]})
        assert r.json()["json"] == {"name": "太郎", "n": [1, None]}
        assert r.json()["method"] == method
        r = send(base + "/inspect", data={"k": "v"}, files={"f": ("a.txt", b"hello")})
        assert r.json()["form"] == {"k": ["v"]}
        assert r.json()["files"] == {"f": ["a.txt", "text/plain", "hello"]}
    one_shot = getattr(client, name)(base + "/inspect", params=[("a", "1")], json=[1])
    assert one_shot.json()["args"] == {"a": ["1"]} and one_shot.json()["json"] == [1]


def test_a_file_upload_streams_from_disk_with_its_length(base: str, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    content = bytes(range(256)) * 8192  # 2 MiB
    path.write_bytes(content)
    with path.open("rb") as f, Client(timeout=10) as c:
        r = c.post(
            base + "/upload",
            data={"title": "a photo"},
            files={"photo": f, "note": ("note.txt", "some text", "text/x-note")},
        )
    assert b"Content-Length: " in r.request_head and b"chunked" not in r.request_head
    assert r.json() == {
        "form": {"title": "a photo"},
        "files": {
            "photo": {
                "filename": "photo.png",
                "content_type": "image/png",
                "sha256": hashlib.sha256(content).hexdigest(),
            },
            "note": {
                "filename": "note.txt",
                "content_type": "text/x-note",
                "sha256": hashlib.sha256(b"some text").hexdigest(),
            },
        },
    }


def test_names_with_quotes_and_newlines_cannot_break_the_part_head(base: str) -> None:
    r = client.post(base + "/inspect", files={'a"b\r\nX-Evil: 1': ('f"\r\n.txt', b"x")})
    # one part, one name: CR and LF stay escaped (werkzeug turns %22 back into a quote)
    assert r.json()["files"] == {'a"b%0D%0AX-Evil: 1': ['f"%0D%0A.txt', "text/plain", "x"]}


def test_an_explicit_content_type_is_kept(base: str) -> None:
    r = client.post(base + "/inspect", json={"a": 1}, headers={"content-type": "text/plain"})
    assert r.json()["content_type"] == "text/plain" and r.json()["json"] is None


def test_a_multipart_body_with_only_bytes_survives_a_307(base: str) -> None:
    target = base + "/inspect"
    r = client.post(
        base + "/redirect",
        params={"to": target},
        files={"f": ("a.txt", b"again")},
        follow_redirects=True,
    )
    assert [h.status for h in r.history] == [307]
    assert r.json()["files"] == {"f": ["a.txt", "text/plain", "again"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": b"x", "json": 1}, "body and json"),
        ({"data": {"a": 1}, "json": 1}, "data and json"),
        ({"body": b"x", "files": {"f": b""}}, "body and files"),
    ],
)
def test_only_one_body(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_payload(**kwargs)  # type: ignore[arg-type]


def test_data_must_be_a_form() -> None:
    with pytest.raises(TypeError, match="body="):
        encode_payload(data=b"raw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter value"):
        add_params("http://x/", {"a": object()})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://x/p", "http://x/p?a=1&b=%E5%A4%AA"),
        ("http://x/p?", "http://x/p?a=1&b=%E5%A4%AA"),
        ("http://x/p?z=0", "http://x/p?z=0&a=1&b=%E5%A4%AA"),
        ("http://x/p?z=0#frag", "http://x/p?z=0&a=1&b=%E5%A4%AA#frag"),
    ],
)
def test_params_are_appended_to_the_query(url: str, expected: str) -> None:
    assert add_params(url, {"a": 1, "b": "太"}) == expected


def test_a_multipart_length_is_exact_and_the_body_is_well_formed() -> None:
    payload = encode_payload(data={"k": "v"}, files={"f": ("a.bin", b"\x00--\r\n")})
    assert payload.body is not None and payload.content_type is not None
    raw = b"".join(payload.body.chunks())
    assert payload.body.length == len(raw) and payload.body.replay == raw
    boundary = payload.content_type.split("boundary=")[1].encode()
    assert raw.startswith(b"--" + boundary + b"\r\n") and raw.endswith(b"--" + boundary + b"--\r\n")
    assert raw.count(boundary) == 3


def test_response_json_refuses_what_is_not_json(base: str) -> None:
    r = client.get(base + "/big")
    with pytest.raises(ValueError):
        r.json()
    assert json.loads(client.get(base + "/args", params={"a": "b"}).body) == {"a": ["b"]}
