"""What hostile clients and careless applications get, on real sockets (issue 8).

Each case is one rule of docs/http-conformance.md seen from the wire: the exact bytes go out
through tests/wire.py (no kakehashi code on the client side) and the status, the environ the
application saw, and whether the connection closed are checked.  Every case runs on both
engines (``engine``: the thread engine with a WSGI application, the asyncio engine on each
loop with its ASGI twin), since both share kakehashi.http1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests import wire
from tests.conftest import addr

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

H = b"Host: good.example\r\n"


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answers with what the application was given: a few environ keys and the body."""
    body = environ["wsgi.input"].read()
    keys = ("PATH_INFO", "QUERY_STRING", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")
    seen = {k: environ.get(k) for k in (*keys, "CONTENT_LENGTH")}
    seen["body"] = body.decode("latin-1")
    out = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


async def echo_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """echo_app's ASGI twin: the same keys, read from the scope."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, []).append(value)
    lengths = {v.strip() for value in headers.get(b"content-length", []) for v in value.split(b",")}
    seen = {
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "HTTP_HOST": b",".join(headers.get(b"host", [])).decode("latin-1") or None,
        "SERVER_NAME": scope["server"][0],
        "SERVER_PORT": str(scope["server"][1]),
        "CONTENT_LENGTH": b",".join(sorted(lengths)).decode() or None,
        "body": body.decode("latin-1"),
    }
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


def asgi_sending(status: int, headers: list[tuple[bytes, bytes]], query_to: bytes = b"") -> Any:
    """An ASGI application answering ``status`` with ``headers``; ``query_to``: a header
    value that is the query string with N made a NUL."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        extra = [(query_to, scope["query_string"].replace(b"N", b"\x00"))] if query_to else []
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + extra})  # fmt: skip
        await send({"type": "http.response.body", "body": b"not a final response"})

    return app


def refused(address: str, raw: bytes, status: int = 400) -> None:
    """``raw`` is answered with ``status`` and the connection is closed after it."""
    with wire.connect(address) as sock:
        sock.sendall(raw)
        reader = wire.Reader(sock)
        resp = reader.read_response()
        assert resp.status == status, (raw, resp)
        assert resp.header("connection") == "close"
        assert reader.closed(), raw


def seen(address: str, raw: bytes) -> dict[str, Any]:
    [resp] = wire.exchange(address, raw)
    assert resp.status == 200, resp
    result: dict[str, Any] = json.loads(resp.body)
    return result


# -- 1: whitespace around the application's header values -------------------------------------


def test_values_with_surrounding_whitespace_are_trimmed_not_refused(start_engine: Any) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", " sid=1; Path=/"), ("X-Tab", "\tv\t")])
        return [b"ok"]

    asgi = asgi_sending(200, [(b"Set-Cookie", b" sid=1; Path=/"), (b"X-Tab", b"\tv\t")])
    [resp] = wire.exchange(addr(start_engine(app, asgi)), b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert resp.status == 200 and resp.body in (b"ok", b"not a final response")
    assert b"\r\nSet-Cookie: sid=1; Path=/\r\n" in resp.raw_head
    assert b"\r\nX-Tab: v\r\n" in resp.raw_head


def test_control_bytes_in_a_value_are_still_a_500(start_engine: Any) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("X-A", environ["QUERY_STRING"].replace("N", "\x00"))])
        return [b"ok"]

    address = addr(start_engine(app, asgi_sending(200, [], query_to=b"x-a")))
    refused(address, b"GET /?N HTTP/1.1\r\n" + H + b"\r\n", 500)
    refused(address, b"GET /?%20N HTTP/1.1\r\n" + H + b"\r\n", 500)


# -- 5: a 1xx status from the application ------------------------------------------------------


@pytest.mark.parametrize("status", ["100 Continue", "101 Switching Protocols", "103 Early Hints"])
def test_an_informational_status_from_the_application_is_a_500(
    start_engine: Any, status: str
) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, [("Link", "</s.css>; rel=preload")])
        return [b"not a final response"]

    # A pipelined second request: the connection must not carry it out of step.
    second = b"GET /second HTTP/1.1\r\n" + H + b"\r\n"
    asgi = asgi_sending(int(status[:3]), [(b"link", b"</s.css>; rel=preload")])
    refused(addr(start_engine(app, asgi)), b"GET / HTTP/1.1\r\n" + H + b"\r\n" + second, 500)


# -- 6: a repeated, equal Content-Length -------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [b"Content-Length: 5\r\nContent-Length: 5\r\n", b"Content-Length: 5, 5\r\n"],
    ids=["two-fields", "list"],
)
def test_repeated_equal_content_length_reaches_the_app_as_one_value(
    start_engine: Any, fields: bytes
) -> None:
    got = seen(
        addr(start_engine(echo_app, echo_asgi)), b"POST / HTTP/1.1\r\n" + H + fields + b"\r\nhello"
    )
    assert (got["CONTENT_LENGTH"], got["body"]) == ("5", "hello")


def test_differing_content_lengths_stay_refused(start_engine: Any) -> None:
    address = addr(start_engine(echo_app, echo_asgi))
    refused(address, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello!")
    refused(address, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n")


# -- 7: a NUL in the decoded path --------------------------------------------------------------


def test_percent_00_in_the_path_is_a_400(start_engine: Any) -> None:
    address = addr(start_engine(echo_app, echo_asgi))
    refused(address, b"GET /etc/passwd%00.png HTTP/1.1\r\n" + H + b"\r\n")
    assert seen(address, b"GET /a?b=%00 HTTP/1.1\r\n" + H + b"\r\n")["QUERY_STRING"] == "b=%00"


# -- 8: absolute-form targets ------------------------------------------------------------------


def test_absolute_form_target_sets_the_host(start_engine: Any) -> None:
    server = start_engine(echo_app, echo_asgi)
    raw = b"GET http://evil.example:81/x?y=1 HTTP/1.1\r\nHost: good.example\r\n\r\n"
    got = seen(addr(server), raw)
    assert got["HTTP_HOST"] == "evil.example:81"
    assert (got["PATH_INFO"], got["QUERY_STRING"]) == ("/x", "y=1")
    assert got["SERVER_PORT"] == addr(server).rsplit(":", 1)[1]  # still the listening socket's


@pytest.mark.parametrize("authority", [b"u@good.example", b"u:secret@good.example", b"@h"])
def test_userinfo_in_the_target_is_a_400(start_engine: Any, authority: bytes) -> None:
    raw = b"GET http://" + authority + b"/ HTTP/1.1\r\n" + H + b"\r\n"
    refused(addr(start_engine(echo_app, echo_asgi)), raw)


# -- 9: whitespace after a chunk size ----------------------------------------------------------


@pytest.mark.parametrize("size_line", [b"5 \r\n", b"5\t\r\n", b"5;ext=1 \r\n"])
def test_whitespace_after_the_chunk_size_is_a_400(start_engine: Any, size_line: bytes) -> None:
    head = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    refused(addr(start_engine(echo_app, echo_asgi)), head + size_line + b"hello\r\n0\r\n\r\n")


def test_bws_before_a_chunk_extension_is_still_accepted(start_engine: Any) -> None:
    head = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    got = seen(addr(start_engine(echo_app, echo_asgi)), head + b"5 ;a=b\r\nhello\r\n0\r\n\r\n")
    assert got["body"] == "hello"
