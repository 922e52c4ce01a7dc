from __future__ import annotations

import io
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from kakehashi.app import Request
from kakehashi.app.routing import Router
from kakehashi.errors import BadRequest, HTTPError


def make(body: bytes = b"", **environ: Any) -> Request:
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(body), **environ}
    if body and "CONTENT_LENGTH" not in env:
        env["CONTENT_LENGTH"] = str(len(body))
    setup_testing_defaults(env)
    router = Router()
    router.add("/greeting/<name>", "greeting", ["GET"])
    return Request(env, router, max_body_size=200_000)


def latin1(text: str) -> str:
    """What a PEP 3333 server puts in PATH_INFO for ``text``: its UTF-8 bytes as latin-1."""
    return text.encode("utf-8").decode("latin-1")


# --- path --------------------------------------------------------------------------------


def test_path_is_decoded_from_pep3333_latin1() -> None:
    request = make(PATH_INFO=latin1("/greeting/太郎"))
    assert request.path == "/greeting/太郎"
    assert request.path_error is None


def test_undecodable_path_is_recorded_not_raised() -> None:
    request = make(PATH_INFO="/greeting/\xff")
    assert request.path_error == "the path is not valid UTF-8"
    assert request.path == "/greeting/\ufffd"


def test_path_outside_latin1_is_a_server_bug_recorded_as_bad() -> None:
    assert make(PATH_INFO="/太").path_error is not None


@pytest.mark.parametrize("key", ["RAW_URI", "REQUEST_URI"])
@pytest.mark.parametrize("target", ["/a%zz", "/a%4", "/a%"])
def test_malformed_percent_in_raw_target(key: str, target: str) -> None:
    request = make(PATH_INFO="/a", **{key: target})
    assert request.path_error == "the path has a malformed percent-encoding"


def test_percent_in_query_of_raw_target_is_not_a_path_error() -> None:
    assert make(PATH_INFO="/a", REQUEST_URI="/a?x=%zz").path_error is None


def test_empty_path_is_root() -> None:
    assert make(PATH_INFO="").path == "/"


def test_method_is_uppercase() -> None:
    assert make(REQUEST_METHOD="post").method == "POST"
    assert repr(make(REQUEST_METHOD="GET", PATH_INFO="/x")) == "<Request GET '/x'>"


# --- query -------------------------------------------------------------------------------


def test_query_is_a_multidict() -> None:
    request = make(QUERY_STRING="tag=a&tag=b&q=%E5%A4%AA+x&empty=&flag")
    assert request.query["tag"] == "a"
    assert request.query.getall("tag") == ["a", "b"]
    assert request.query["q"] == "太 x"
    assert request.query["empty"] == ""
    assert request.query["flag"] == ""
    assert request.query.getall("missing") == []
    assert request.query.get("missing") is None
    assert len(request.query) == 4
    assert "MultiDict" in repr(request.query)
    assert request.query_string.startswith("tag=a")


def test_raw_utf8_bytes_in_query() -> None:
    assert make(QUERY_STRING=latin1("q=太")).query["q"] == "太"


def test_bad_utf8_in_query_is_400() -> None:
    with pytest.raises(BadRequest):
        _ = make(QUERY_STRING="q=%FF").query


# --- headers, cookies, client -------------------------------------------------------------


def test_headers_ignore_case() -> None:
    request = make(HTTP_X_TRACE_ID="abc", CONTENT_TYPE="text/plain", HTTP_ACCEPT="*/*")
    assert request.headers["x-trace-id"] == "abc"
    assert request.headers["X-TRACE-ID"] == "abc"
    assert request.headers.get("content-type") == "text/plain"
    assert "Accept" in request.headers
    assert request.headers.get("Nope") is None
    assert request.headers.getall("accept") == ["*/*"]
    with pytest.raises(KeyError):
        _ = request.headers["Nope"]


def test_request_headers_are_read_only_and_copy_to_a_mutable_headers() -> None:
    request = make(HTTP_ACCEPT="*/*", HTTP_COOKIE="a=1")
    assert request.cookies == {"a": "1"}
    with pytest.raises(TypeError, match="read-only"):
        request.headers["Cookie"] = "a=2"
    with pytest.raises(TypeError, match="read-only"):
        del request.headers["Accept"]
    with pytest.raises(TypeError, match="read-only"):
        request.headers.update(Accept="text/html")
    forwarded = request.headers.copy()
    forwarded["Accept"] = "text/html"
    assert (forwarded["accept"], request.headers["accept"]) == ("text/html", "*/*")
    assert request.headers["Cookie"] == "a=1"


def test_headers_with_control_characters_from_a_buggy_server_are_dropped() -> None:
    request = make(HTTP_X_BAD="a\r\nb", HTTP_X_GOOD="ok")
    assert "X-Bad" not in request.headers
    assert request.headers["X-Good"] == "ok"


def test_cookies() -> None:
    cookie = latin1('a=1; b="quoted"; junk; =x; a=2; name=太郎')
    assert make(HTTP_COOKIE=cookie).cookies == {"a": "1", "b": "quoted", "name": "太郎"}
    assert make().cookies == {}


def test_client_address() -> None:
    request = make(REMOTE_ADDR="127.0.0.9", REMOTE_PORT="5555")
    assert (request.remote_addr, request.remote_port) == ("127.0.0.9", 5555)
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    env.pop("REMOTE_ADDR", None)
    assert Request(env).remote_addr is None
    assert Request(env).remote_port is None


# --- body --------------------------------------------------------------------------------


def test_body_bytes_and_text() -> None:
    data = "こんにちは".encode()
    assert make(data).body == data
    assert make(data).text == "こんにちは"
    latin = make("é".encode("latin-1"), CONTENT_TYPE="text/plain; charset=latin-1")
    assert latin.text == "é"
    assert make().body == b""


@pytest.mark.parametrize(
    ("body", "content_type"), [(b"\xff", "text/plain"), (b"x", "text/plain; charset=nope")]
)
def test_bad_text_is_400(body: bytes, content_type: str) -> None:
    with pytest.raises(BadRequest):
        _ = make(body, CONTENT_TYPE=content_type).text


def test_body_is_read_only_up_to_content_length() -> None:
    request = make(b"hello world", CONTENT_LENGTH="5")
    assert request.body == b"hello"
    assert request.environ["wsgi.input"].read() == b" world"


def test_body_without_length_is_empty_unless_input_terminated() -> None:
    assert make(b"abc", CONTENT_LENGTH="").body == b""
    assert make(b"abc", CONTENT_LENGTH="", **{"wsgi.input_terminated": True}).body == b"abc"


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "١"])
def test_invalid_content_length_is_400(length: str) -> None:
    with pytest.raises(BadRequest):
        _ = make(b"x", CONTENT_LENGTH=length).body


def test_short_body_is_400() -> None:
    with pytest.raises(BadRequest):
        _ = make(b"abc", CONTENT_LENGTH="10").body


def test_body_over_the_limit_is_413() -> None:
    with pytest.raises(HTTPError) as caught:
        _ = make(b"x" * 200_001).body
    assert caught.value.status == 413
    terminated = make(b"x" * 200_001, CONTENT_LENGTH="", **{"wsgi.input_terminated": True})
    with pytest.raises(HTTPError):
        _ = terminated.body


def test_json() -> None:
    assert make(b'{"a": [1, "\xc3\xa9"]}').json == {"a": [1, "é"]}


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"a": 1,}', b"\xff", b"[" * 100_000],
    ids=["empty", "open", "trailing-comma", "not-utf8", "too-deep"],
)
def test_bad_json_is_400(body: bytes) -> None:
    request = make(body, CONTENT_TYPE="application/json")
    with pytest.raises(BadRequest):
        _ = request.json


# --- forms -------------------------------------------------------------------------------


def test_urlencoded_form() -> None:
    request = make(
        b"name=%E5%A4%AA%E9%83%8E&tag=a&tag=b+c",
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form["name"] == "太郎"
    assert request.form.getall("tag") == ["a", "b c"]
    assert len(request.files) == 0


def test_form_of_other_types_is_empty() -> None:
    assert len(make(b"a=1", CONTENT_TYPE="text/plain").form) == 0


def multipart(*parts: bytes, boundary: str = "XyZ") -> Request:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return make(body, CONTENT_TYPE=f'multipart/form-data; boundary="{boundary}"')


def test_multipart_fields_and_files() -> None:
    request = multipart(
        b'Content-Disposition: form-data; name="title"\r\n\r\n\xe5\xa4\xaa',
        b'Content-Disposition: form-data; name="up"; filename="a;b.bin"\r\n'
        b"Content-Type: application/x-thing\r\n\r\n\x00\r\n\xff",
        b"Content-Disposition: form-data; name=\"up\"; filename*=UTF-8''%E5%A4%AA.txt\r\n\r\nplain",
    )
    assert request.form["title"] == "太"
    first, second = request.files.getall("up")
    assert (first.filename, first.content_type, first.data) == (
        "a;b.bin",
        "application/x-thing",
        b"\x00\r\n\xff",
    )
    assert (second.filename, second.content_type, second.data) == (
        "太.txt",
        "application/octet-stream",
        b"plain",
    )
    assert len(second) == 5
    request.close()
    assert first.stream.closed and second.stream.closed


def test_empty_multipart() -> None:
    request = make(b"--b--\r\n", CONTENT_TYPE="multipart/form-data; boundary=b")
    assert len(request.form) == 0


def test_multipart_part_without_headers_is_400() -> None:
    with pytest.raises(BadRequest):
        _ = multipart(b"\r\nvalue").form


@pytest.mark.parametrize(
    ("body", "boundary"),
    [
        (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n", "b"),  # not closed
        (b"no boundary here", "b"),
        (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--", ""),
        (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--", "太"),
        (b"--bjunk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--", "b"),
        (b"--b\r\nContent-Disposition: form-data; name=a\r\nx\r\n--b--", "b"),
        (b"--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", "b"),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "b"),
        (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n--b--", "b"),
        (b"--b\r\nContent-Disposition: form-data; name=\xff\r\n\r\nx\r\n--b--", "b"),
        (b"--b\r\nno colon\r\n\r\nx\r\n--b--", "b"),
        (b"--b", "b"),
    ],
)
def test_malformed_multipart_is_400(body: bytes, boundary: str) -> None:
    content_type = "multipart/form-data" + (f"; boundary={boundary}" if boundary else "")
    request = make(body, CONTENT_TYPE=content_type)
    with pytest.raises(BadRequest):
        _ = request.files


def test_bad_rfc5987_parameter_is_ignored() -> None:
    request = multipart(
        b'Content-Disposition: form-data; name="f"; filename="a"; filename*=nope\'\'x\r\n\r\nz'
    )
    assert request.files["f"].filename == "a"
    request.close()


# --- url_for -----------------------------------------------------------------------------


def test_url_for_uses_the_mount_point_and_can_be_external() -> None:
    request = make(SCRIPT_NAME="/app/", HTTP_HOST="example.test:8080")
    assert request.url_for("greeting", name="太") == "/app/greeting/%E5%A4%AA"
    assert (
        request.url_for("greeting", name="x", _external=True)
        == "http://example.test:8080/app/greeting/x"
    )


def test_host_falls_back_to_server_name_and_port() -> None:
    env: dict[str, Any] = {"SERVER_NAME": "h", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    assert Request(env).host == "h"
    env["SERVER_PORT"] = "8000"
    assert Request(env).host == "h:8000"


def test_url_for_without_router() -> None:
    with pytest.raises(RuntimeError):
        Request({}).url_for("x")
