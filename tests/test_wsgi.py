"""Unit tests of kakehashi.wsgi: EnvironBuilder and StartResponse, no sockets."""

from __future__ import annotations

import io
import sys

import pytest

from kakehashi import http1, wsgi
from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.wsgi import EnvironBuilder, FileWrapper, HeadCache, StartResponse, base_environ

pytestmark = pytest.mark.timeout(10)


def parse(raw: bytes) -> http1.Request:
    parsed = http1.maybe_parse_request_head(raw, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    return parsed[0]


def build(raw: bytes) -> dict[str, object]:
    builder = EnvironBuilder(base_environ("example", 8080))
    return builder.build(parse(raw), io.BytesIO(b""), ("10.0.0.1", 5555))


def test_environ_keys_and_values() -> None:
    env = build(
        b"POST /a%20b/c?x=%41 HTTP/1.1\r\nHost: h\r\nContent-Type: text/x\r\n"
        b"Content-Length: 0\r\nX-A: 1\r\nx-a: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=%41"
    assert env["RAW_URI"] == env["REQUEST_URI"] == "/a%20b/c?x=%41"
    assert env["SERVER_NAME"] == "example" and env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["CONTENT_TYPE"] == "text/x" and env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_X_A"] == "1,2"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["REMOTE_ADDR"] == "10.0.0.1" and env["REMOTE_PORT"] == "5555"
    assert env["SCRIPT_NAME"] == ""
    assert env["wsgi.errors"] is sys.stderr
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert env["wsgi.input_terminated"] is True


def test_path_info_is_latin1_of_the_utf8_bytes() -> None:
    env = build(b"GET /greeting/%E5%A4%AA%E9%83%8E HTTP/1.1\r\nHost: h\r\n\r\n")
    path = env["PATH_INFO"]
    assert isinstance(path, str)
    assert path.encode("latin-1").decode("utf-8") == "/greeting/太郎"


def test_underscore_headers_are_dropped() -> None:
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\nX_Auth: evil\r\nX-Auth: good\r\n\r\n")
    assert env["HTTP_X_AUTH"] == "good"


def test_builder_does_not_share_environ_between_requests() -> None:
    builder = EnvironBuilder(base_environ("h", 1))
    a = builder.build(parse(b"GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"), io.BytesIO(), ("", 0))
    b = builder.build(parse(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"), io.BytesIO(), ("", 0))
    assert "HTTP_X_A" in a and "HTTP_X_A" not in b


def test_bad_percent_encoding_is_a_400() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        build(b"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n")
    assert info.value.status_hint == 400


def test_nul_in_the_decoded_path_is_a_400() -> None:
    for target in (b"/a%00b", b"/a%00", b"/%00?x=1", b"http://h/a%00"):
        with pytest.raises(RemoteProtocolError) as info:
            build(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        assert info.value.status_hint == 400, target
    assert build(b"GET /a?x=%00 HTTP/1.1\r\nHost: h\r\n\r\n")["QUERY_STRING"] == "x=%00"


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: 5,5\r\nContent-Length: 5\r\n",
    ],
)
def test_repeated_equal_content_length_is_one_value(fields: bytes) -> None:
    env = build(b"POST / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
    assert env["CONTENT_LENGTH"] == "5"


def test_absolute_form_authority_is_the_host() -> None:
    env = build(b"GET http://good.example:8000/x?q=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert env["HTTP_HOST"] == "good.example:8000"
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/x", "q=1")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example", "8080")
    env = build(b"GET HTTPS://[::1] HTTP/1.0\r\n\r\n")  # HTTP/1.0 without Host
    assert (env["HTTP_HOST"], env["PATH_INFO"]) == ("[::1]", "/")
    assert build(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")["HTTP_HOST"] == "h"


@pytest.mark.parametrize(
    "target", [b"http://u@good.example/", b"http://u:pw@h/x", b"http://@h/", b"http://a<b/"]
)
def test_userinfo_or_bad_authority_in_the_target_is_a_400(target: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        build(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert info.value.status_hint == 400


def test_base_environ_multiprocess_and_scheme() -> None:
    env = base_environ("h", 1, "https", True)
    assert env["wsgi.url_scheme"] == "https" and env["wsgi.multiprocess"] is True
    assert env["wsgi.version"] == (1, 0) and env["wsgi.run_once"] is False


# -- StartResponse ---------------------------------------------------------------------------


def start() -> tuple[StartResponse, list[bytes]]:
    written: list[bytes] = []
    return StartResponse(written.append), written


def test_start_response_records_status_and_encoded_headers() -> None:
    sr, written = start()
    write = sr("201 Created Thing", [("Content-Type", "text/plain"), ("X-É", "é")][:1])
    assert (sr.status_code, sr.reason) == (201, b"Created Thing")
    assert sr.headers == [(b"Content-Type", b"text/plain")]
    write(b"x")
    assert written == [b"x"]


def test_latin1_header_values_are_allowed() -> None:
    sr, _ = start()
    sr("200 OK", [("X-Name", "café")])
    assert sr.headers == [(b"X-Name", "café".encode("latin-1"))]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("OK", []),
        ("2000 OK", []),
        (200, []),
        ("200 OK\r\nX: y", []),
        ("200 OK", ()),
        ("200 OK", [("X-A", "1", "2")]),
        ("200 OK", [["X-A", "1"]]),
        ("200 OK", [("X A", "1")]),
        ("200 OK", [("X-A", "a\r\nb")]),
        ("200 OK", [("X-A", "a\nb")]),
        ("200 OK", [("X-A", " a\x00b")]),
        ("200 OK", [("X-A", "a\x01 ")]),
        ("100 Continue", []),
        ("101 Switching Protocols", []),
        ("103 Early Hints", []),
        ("199 Whatever", []),
        ("600 Beyond", []),
        ("200 OK", [("X-A", 1)]),
        ("200 OK", [("X-A", "日本")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("Keep-Alive", "5")]),
        ("200 OK", [("Upgrade", "h2c")]),
    ],
)
def test_invalid_status_or_headers_raise(status: object, headers: object) -> None:
    sr, _ = start()
    with pytest.raises(LocalProtocolError):
        sr(status, headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (" csrftoken=abc; Path=/", b"csrftoken=abc; Path=/"),  # Django's Set-Cookie
        ("\tpadded \t", b"padded"),
        ("inner  \t space", b"inner  \t space"),
        ("   ", b""),
    ],
)
def test_whitespace_around_a_value_is_trimmed(value: str, sent: bytes) -> None:
    sr, _ = start()
    sr("200 OK", [("Set-Cookie", value)])
    assert sr.headers == [(b"Set-Cookie", sent)]
    assert http1.validate_fields(sr.headers) == sr.headers  # what the wire rules accept


def test_connection_header_is_allowed() -> None:
    sr, _ = start()
    sr("200 OK", [("Connection", "close")])
    assert sr.headers == [(b"Connection", b"close")]


def test_twice_without_exc_info_raises() -> None:
    sr, _ = start()
    sr("200 OK", [])
    with pytest.raises(LocalProtocolError):
        sr("200 OK", [])


def test_exc_info_before_headers_sent_replaces() -> None:
    sr, _ = start()
    sr("200 OK", [("X-A", "1")])
    try:
        raise ValueError("x")
    except ValueError:
        sr("500 Error", [("X-B", "2")], sys.exc_info())
    assert sr.status_code == 500 and sr.headers == [(b"X-B", b"2")]


def test_exc_info_after_headers_sent_reraises() -> None:
    sr, _ = start()
    sr("200 OK", [])
    sr.headers_sent = True
    try:
        raise KeyError("original")
    except KeyError:
        info = sys.exc_info()
    with pytest.raises(KeyError, match="original"):
        sr("500 Error", [], info)  # type: ignore[arg-type]


def test_file_wrapper_iterates_and_closes() -> None:
    f = io.BytesIO(b"abcdefg")
    wrapper = FileWrapper(f, 3)
    assert list(wrapper) == [b"abc", b"def", b"g"]
    wrapper.close()
    assert f.closed


def test_head_cache_remembers_names_but_still_checks_every_value() -> None:
    cache = HeadCache()
    first = StartResponse(lambda data: None, cache)
    first("200 OK", [("Content-Type", "text/plain")])
    assert cache.names["Content-Type"] == (b"Content-Type", "content-type")
    assert cache.statuses["200 OK"] == (200, b"OK")
    second = StartResponse(lambda data: None, cache)
    with pytest.raises(LocalProtocolError):
        second("200 OK", [("Content-Type", "text/plain\r\nX-Injected: 1")])


def test_head_cache_is_bounded() -> None:
    cache = HeadCache()
    for i in range(2000):
        StartResponse(lambda data: None, cache)(f"200 R{i}", [(f"X-N{i}", "v")])
    assert len(cache.names) <= 512 and len(cache.statuses) <= 512


def test_start_response_notes_what_the_server_acts_on() -> None:
    sr, _ = start()
    sr("200 OK", [("Content-Length", "12"), ("Connection", "Keep-Alive, Close"), ("Date", "x")])
    assert (sr.content_length, sr.connection, sr.has_date, sr.has_server) == (
        12, wsgi.CONNECTION_CLOSE, True, False,
    )  # fmt: skip
    assert sr.lines == [
        b"Content-Length: 12\r\n",
        b"Connection: Keep-Alive, Close\r\n",
        b"Date: x\r\n",
    ]
    plain = StartResponse(lambda data: None, sr.cache)
    plain("200 OK", [("Connection", "upgrade-ish"), ("Server", "mine"), ("Content-Length", "12")])
    assert (plain.content_length, plain.connection, plain.has_server) == (12, wsgi.CONNECTION, True)


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Length", "1"), ("Content-Length", "2")],
        [("Content-Length", "-1")],
        [("Content-Length", "1 1")],
        [("Content-Length", "9" * 19)],
        [("X-A", ["not", "a", "str"])],
    ],
)
def test_bad_lengths_and_unhashable_values_raise(headers: list[tuple[str, object]]) -> None:
    sr, _ = start()
    with pytest.raises(LocalProtocolError):
        sr("200 OK", headers)  # type: ignore[arg-type]


def test_field_cache_is_bounded_and_keeps_checking_new_values() -> None:
    cache = HeadCache()
    for i in range(2000):
        StartResponse(lambda data: None, cache)("200 OK", [("Set-Cookie", f"id={i}")])
    assert len(cache.fields) <= 512
    late = StartResponse(lambda data: None, cache)
    late("200 OK", [("Set-Cookie", "id=late"), ("Content-Length", "3")])
    assert late.headers == [(b"Set-Cookie", b"id=late"), (b"Content-Length", b"3")]
    assert late.content_length == 3
    with pytest.raises(LocalProtocolError):
        StartResponse(lambda data: None, cache)("200 OK", [("Set-Cookie", "a\r\nX: y")])


@pytest.mark.parametrize("status", [["200 OK"], {"200": "OK"}, b"200 OK"])
def test_a_status_of_another_type_raises_the_protocol_error(status: object) -> None:
    sr, _ = start()
    with pytest.raises(LocalProtocolError):
        sr(status, [])  # type: ignore[arg-type]
