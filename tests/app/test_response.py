from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.app import App, Client, HTTPError, NotFound, Request, Response, abort, redirect
from kakehashi.app.response import make_response


def run(response: Response, method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []
    body = response({"REQUEST_METHOD": method}, lambda s, h: started.append((s, h)))
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    return started[0][0], started[0][1], data


@pytest.mark.parametrize(
    ("value", "content_type", "body"),
    [
        ("héllo", "text/plain; charset=utf-8", "héllo".encode()),
        (b"\x00raw", "application/octet-stream", b"\x00raw"),
        (bytearray(b"ba"), "application/octet-stream", b"ba"),
        (memoryview(b"mv"), "application/octet-stream", b"mv"),
        ({"name": "太郎"}, "application/json", '{"name":"太郎"}'.encode()),
        ([1, 2], "application/json", b"[1,2]"),
    ],
)
def test_return_values(value: Any, content_type: str, body: bytes) -> None:
    status, headers, data = run(make_response(value))
    assert status == "200 OK"
    assert ("Content-Type", content_type) in headers
    assert ("Content-Length", str(len(body))) in headers
    assert data == body


def test_tuples() -> None:
    assert make_response(("made", 201)).status == 201
    response = make_response(("x", 202, {"X-A": "1", "Content-Type": "text/csv"}))
    assert response.headers.getall("Content-Type") == ["text/csv"]
    assert response.headers["x-a"] == "1"
    listed = make_response((Response("y"), 203, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]))
    assert listed.status == 203
    assert listed.headers.getall("Set-Cookie") == ["a=1", "b=2"]


@pytest.mark.parametrize(
    "value", [None, 42, ("x",), ("x", "200"), (("x", 200), 200), ("x", 200, {}, 1), ("x", 1000)]
)
def test_unusable_return_values(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        make_response(value)


def test_streaming_encodes_str_and_closes() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[str | bytes]:
        try:
            yield "a"
            yield b"b"
        finally:
            closed.append(True)

    _status, headers, data = run(make_response(chunks()))
    assert data == b"ab"
    assert not any(name == "Content-Length" for name, _ in headers)
    assert closed == [True]


class Stream:
    """An iterable that records whether it was closed, as WSGI requires."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"never"

    def close(self) -> None:
        self.closed = True


def test_head_drops_the_body_keeps_the_length_and_closes_streams() -> None:
    _status, headers, data = run(Response("hello"), "HEAD")
    assert ("Content-Length", "5") in headers
    assert data == b""
    stream = Stream()
    _, _, data = run(Response(stream), "HEAD")
    assert data == b""
    assert stream.closed


def test_no_body_status_closes_streams() -> None:
    stream = Stream()
    run(Response(stream, 204))
    assert stream.closed


@pytest.mark.parametrize("status", [204, 304, 101])
def test_no_body_statuses_have_no_content_headers(status: int) -> None:
    line, headers, data = run(Response("ignored", status))
    names = {name for name, _ in headers}
    assert "Content-Type" not in names
    assert "Content-Length" not in names
    assert data == b""
    assert line.startswith(str(status))


def test_unknown_status_phrase() -> None:
    assert Response("x", 599).status_line == "599 Unknown"
    assert repr(Response("x", 418)) == "<Response 418 I'm a Teapot>"


@pytest.mark.parametrize("status", [99, 1000])
def test_bad_status(status: int) -> None:
    with pytest.raises(ValueError):
        Response("x", status)


def test_status_code_is_flasks_name_for_status() -> None:
    response = Response("x", 201)
    assert response.status_code == response.status == 201
    response.status_code = 404
    assert (response.status, response.status_line) == (404, "404 Not Found")
    assert run(response)[0] == "404 Not Found"


@pytest.mark.parametrize("status", [99, 1000, "200", "200 OK", None, True, 200.0])
def test_bad_status_code_is_refused_and_the_status_kept(status: Any) -> None:
    response = Response("x", 201)
    with pytest.raises(ValueError, match="invalid status"):
        response.status_code = status
    assert response.status == 201


def test_headers_set_in_views_and_hooks_as_in_flask(app: App, client: Client) -> None:
    @app.get("/")
    def index(req: Request) -> Response:
        response = Response("x", headers=[("Set-Cookie", "a=1"), ("X-Old", "1")])
        response.headers["X-Thing"] = "v"
        response.headers["x-old"] = "2"  # replaces, whatever the case
        response.headers.add("Set-Cookie", "b=2")
        return response

    @app.after_request
    def security(req: Request, response: Response) -> Response:
        response.headers.update({"X-Frame-Options": "DENY", "Cache-Control": "no-store"})
        response.headers.setdefault("X-Thing", "not this")
        del response.headers["X-Powered-By"]  # absent: nothing happens, as in Flask
        return response

    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["X-Thing"] == "v"
    assert answer.headers.getall("X-Old") == ["2"]
    assert answer.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert (answer.headers["X-Frame-Options"], answer.headers["Cache-Control"]) == (
        "DENY",
        "no-store",
    )


def test_a_bad_header_set_in_a_view_is_a_500_with_the_error_logged(
    app: App, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/")
    def index(req: Request) -> Response:
        response = Response("x")
        response.headers["X-Thing"] = "v\r\nSet-Cookie: admin=1"
        return response

    with caplog.at_level(logging.ERROR, logger="kakehashi.app"):
        answer = client.get("/")
    assert answer.status_code == 500
    assert "Set-Cookie" not in answer.headers and "admin" not in answer.text
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "invalid character in the value of header 'X-Thing'" in str(record.exc_info[1])


@pytest.mark.parametrize(
    ("name", "value"), [("X-Bad", "a\r\nInjected: 1"), ("X-Bad", "a\nb"), ("Bad Name", "v")]
)
def test_header_injection_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Response("x", headers=[(name, value)])


def test_set_cookie_attributes() -> None:
    response = Response("x")
    response.set_cookie(
        "sid",
        "abc",
        max_age=dt.timedelta(hours=1),
        expires=dt.datetime(2030, 1, 2, 3, 4, 5),
        domain="example.test",
        secure=True,
        samesite="strict",
    )
    response.set_cookie("plain", "1", path=None, httponly=False, samesite=None, expires=0)
    assert response.headers.getall("Set-Cookie") == [
        "sid=abc; Max-Age=3600; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Domain=example.test; "
        "Path=/; Secure; HttpOnly; SameSite=Strict",
        "plain=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
    ]


def test_delete_cookie() -> None:
    response = Response("x")
    response.delete_cookie("sid", path="/app")
    (line,) = response.headers.getall("Set-Cookie")
    assert line.startswith("sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "a b", "value": "x"},
        {"name": "a", "value": "x;y"},
        {"name": "a", "value": "é"},
        {"name": "a", "value": "x", "path": "/;x"},
        {"name": "a", "value": "x", "samesite": "sometimes"},
    ],
)
def test_bad_cookies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Response("x").set_cookie(**kwargs)


def test_redirect() -> None:
    response = redirect("/greeting/太郎?q=1")
    assert response.status == 302
    assert response.headers["Location"] == "/greeting/%E5%A4%AA%E9%83%8E?q=1"
    assert redirect("/x", 303).status == 303
    with pytest.raises(ValueError):
        redirect("/x", 200)


def test_abort() -> None:
    with pytest.raises(NotFound):
        abort(404)
    with pytest.raises(HTTPError) as caught:
        abort(418)
    assert (caught.value.status, caught.value.description) == (418, "I'm a Teapot")
    with pytest.raises(HTTPError) as caught:
        abort(400, "no name")
    assert (caught.value.status, caught.value.description) == (400, "no name")
