"""The HTTP scope: every key of asgiref's www.rst, from a request parsed by kakehashi.http1."""

from __future__ import annotations

from typing import Any

import pytest

from kakehashi.asgi import ScopeBuilder, tls_extension
from kakehashi.asgi._scope import message_type
from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from tests.asgi.helpers import get, request

KEYS = {
    "type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string",
    "root_path", "headers", "client", "server", "state", "extensions",
}  # fmt: skip


def build(raw_target: bytes = b"/", root: str = "", **kw: Any) -> dict[str, Any]:
    builder = ScopeBuilder(("127.0.0.1", 8000), root, {"http.response.trailers": {}})
    return builder.build(get(raw_target), ("10.0.0.1", 5555), "http", {"db": 1}, **kw)


def test_every_key_is_present_with_its_type() -> None:
    scope = build(b"/a/b?x=1&y=%20")
    assert set(scope) == KEYS
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/a/b",
        b"/a/b",
        b"x=1&y=%20",
    )
    assert scope["root_path"] == ""
    assert scope["client"] == ("10.0.0.1", 5555)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"db": 1}
    assert scope["extensions"] == {"http.response.trailers": {}}


def test_path_is_percent_decoded_utf8_and_raw_path_is_as_received() -> None:
    scope = build(b"/greeting/%E5%A4%AA%E9%83%8E/a%2Fb")
    assert scope["path"] == "/greeting/太郎/a/b"
    assert scope["raw_path"] == b"/greeting/%E5%A4%AA%E9%83%8E/a%2Fb"


@pytest.mark.parametrize("target", [b"/%ff", b"/a%2", b"/a%zz", b"/x%00y"])
def test_a_bad_escape_or_a_path_that_is_not_utf8_is_a_400(target: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        build(target)
    assert caught.value.status_hint == 400


def test_headers_are_lowercased_pairs_in_order_with_duplicates() -> None:
    req = request(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nAccept: */*\r\nx-dup: 2\r\nX-DUP: 3\r\n\r\n"
    )
    scope = ScopeBuilder(None, "", {}).build(req, None, "http", {})
    assert scope["headers"] == [
        (b"host", b"h"), (b"x-dup", b"1"), (b"accept", b"*/*"), (b"x-dup", b"2"),
        (b"x-dup", b"3"),
    ]  # fmt: skip
    assert scope["client"] is None and scope["server"] is None


def test_http_10_and_other_methods() -> None:
    req = request(b"DELETE /x HTTP/1.0\r\n\r\n")
    scope = ScopeBuilder(None, "", {}).build(req, None, "https", {})
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.0", "DELETE", "https")
    req = request(b"PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert ScopeBuilder(None, "", {}).build(req, None, "http", {})["method"] == "PURGE"


def test_absolute_form_takes_its_authority_as_the_host() -> None:
    req = request(b"GET http://evil.example:81/x?y=1 HTTP/1.1\r\nHost: good.example\r\n\r\n")
    scope = ScopeBuilder(None, "", {}).build(req, None, "http", {})
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/x", b"/x", b"y=1")
    assert scope["headers"] == [(b"host", b"evil.example:81")]


def test_root_path_is_in_the_path_whether_or_not_the_proxy_kept_it() -> None:
    assert build(b"/app/users", root="/app/")["path"] == "/app/users"
    assert build(b"/users", root="/app")["path"] == "/app/users"
    assert build(b"/app", root="/app")["path"] == "/app"
    assert build(b"/application", root="/app")["path"] == "/app/application"
    assert build(b"/users", root="/app")["root_path"] == "/app"


def test_state_is_a_shallow_copy_per_request() -> None:
    state: dict[str, Any] = {"pool": [1]}
    builder = ScopeBuilder(None, "", {})
    first = builder.build(get(), None, "http", state)
    first["state"]["new"] = True
    second = builder.build(get(), None, "http", state)
    assert "new" not in second["state"] and "new" not in state
    assert second["state"]["pool"] is state["pool"]  # shallow: the objects are shared


def test_extensions_are_a_fresh_dict_each_time_with_tls_when_given() -> None:
    builder = ScopeBuilder(None, "", {"http.response.pathsend": {}})
    tls = tls_extension(0x0304, 0x1301, client_cert_name="CN=client")
    scope = builder.build(get(), None, "https", {}, tls=tls)
    assert scope["extensions"]["tls"] == {
        "server_cert": None, "client_cert_chain": [], "client_cert_name": "CN=client",
        "client_cert_error": None, "tls_version": 0x0304, "cipher_suite": 0x1301,
    }  # fmt: skip
    scope["extensions"]["mine"] = 1
    assert builder.build(get(), None, "http", {})["extensions"] == {"http.response.pathsend": {}}


def test_connect_and_asterisk_targets() -> None:
    req = request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert ScopeBuilder(None, "", {}).build(req, None, "http", {})["path"] == "*"


@pytest.mark.parametrize("bad", [None, "http.response.body", [], ["type"], {}, {"body": b""}])
def test_a_message_without_a_type_is_refused_in_one_line(bad: Any) -> None:
    # Every cycle (HTTP, WebSocket, lifespan) reads an application's message type through it.
    with pytest.raises(LocalProtocolError, match="an ASGI message is a dict with a 'type'"):
        message_type(bad)
    assert message_type({"type": "http.response.start"}) == "http.response.start"
