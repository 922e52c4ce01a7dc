"""The http cycle: what an application may send, and the bytes that go out for it."""

from __future__ import annotations

from typing import Any

import pytest

from kakehashi.asgi import FieldCache, HTTPCycle, PathSend, Phase, error_page
from kakehashi.errors import LocalProtocolError
from kakehashi.http1 import Request
from tests.asgi.helpers import get, head, request

DATE = b"Tue, 01 Dec 2026 00:00:00 GMT"


def cycle(req: Request | None = None) -> HTTPCycle:
    return HTTPCycle(req or get(), FieldCache(), DATE)


def start(status: int = 200, headers: Any = (), **extra: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers, **extra}


def body(data: bytes = b"", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def wire(c: HTTPCycle, *messages: dict[str, Any]) -> bytes:
    out = b""
    for message in messages:
        sent = c.send(message)
        assert not isinstance(sent, PathSend)
        out += sent if isinstance(sent, bytes) else b"".join(sent)
    return out


def split(raw: bytes) -> tuple[bytes, list[bytes], bytes]:
    head_, _, rest = raw.partition(b"\r\n\r\n")
    status, *fields = head_.split(b"\r\n")
    return status, fields, rest


# -- held start, framing ----------------------------------------------------------------------


def test_start_is_held_until_the_first_body_message() -> None:
    c = cycle()
    assert c.send(start(200, [(b"content-type", b"text/plain")])) == b""
    assert not c.head_sent and c.phase is Phase.HELD
    status, fields, rest = split(wire(c, body(b"hello")))
    assert status == b"HTTP/1.1 200 OK"
    assert b"content-type: text/plain" in fields
    assert b"content-length: 5" in fields  # known: one body message without more_body
    assert b"date: " + DATE in fields and b"server: kakehashi" in fields
    assert rest == b"hello"
    assert c.head_sent and c.complete and c.keep_alive and c.body_bytes == 5


def test_a_streamed_body_is_chunked_on_http11() -> None:
    c = cycle()
    raw = wire(c, start(), body(b"ab", more=True), body(b"", more=True), body(b"cde"))
    _status, fields, rest = split(raw)
    assert b"Transfer-Encoding: chunked" in fields
    assert rest == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    assert c.complete and c.keep_alive


def test_a_streamed_body_to_http10_is_delimited_by_close() -> None:
    c = cycle(get(version=b"1.0"))
    _status, fields, rest = split(wire(c, start(), body(b"ab", more=True), body(b"c")))
    assert b"Connection: close" in fields
    assert rest == b"abc" and not c.keep_alive


def test_the_applications_content_length_is_used_and_checked() -> None:
    c = cycle()
    raw = wire(c, start(200, [(b"Content-Length", b"4")]), body(b"ab", True), body(b"cd"))
    assert split(raw)[2] == b"abcd"
    with pytest.raises(LocalProtocolError, match="longer"):
        wire(cycle(), start(200, [(b"content-length", b"1")]), body(b"ab", True))
    short = cycle()
    wire(short, start(200, [(b"content-length", b"5")]), body(b"ab", True))
    with pytest.raises(LocalProtocolError, match="shorter"):
        short.send(body(b"c"))


def test_a_wrong_length_in_one_message_is_refused_before_anything_goes_out() -> None:
    c = cycle()
    c.send(start(200, [(b"content-length", b"10")]))
    with pytest.raises(LocalProtocolError):
        c.send(body(b"short"))
    assert not c.head_sent  # so the engine can still answer 500


def test_transfer_encoding_from_the_application_is_ignored() -> None:
    c = cycle()
    raw = wire(c, start(200, [(b"transfer-encoding", b"gzip, chunked")]), body(b"x"))
    _status, fields, rest = split(raw)
    assert not any(f.lower().startswith(b"transfer-encoding") for f in fields)
    assert b"content-length: 1" in fields and rest == b"x"


def test_head_and_204_and_304_have_no_body() -> None:
    c = cycle(head())
    status, fields, rest = split(wire(c, start(200, [(b"content-length", b"9")]), body(b"x")))
    assert b"content-length: 9" in fields and rest == b""
    assert c.body_bytes == 0  # what went out, for the access log and the metrics
    c = cycle()
    status, fields, rest = split(wire(c, start(204, [(b"content-length", b"0")]), body()))
    assert status == b"HTTP/1.1 204 No Content" and rest == b""
    assert not any(f.lower().startswith(b"content-length") for f in fields)
    c = cycle()
    assert split(wire(c, start(304), body(b"ignored")))[2] == b""
    assert c.body_bytes == 0


def test_the_applications_headers_are_kept_for_the_access_log() -> None:
    c = cycle()
    assert c.headers is None
    headers = [(b"x-out", b"1"), (b"content-length", b"2")]
    wire(c, start(201, headers), body(b"ok"))
    assert c.headers is headers and c.status == 201


def test_connection_close_from_the_application_closes() -> None:
    c = cycle()
    wire(c, start(200, [(b"connection", b"close")]), body(b"x"))
    assert not c.keep_alive


def test_the_client_asking_to_close_is_kept() -> None:
    c = cycle(get(extra=b"Connection: close\r\n"))
    _status, fields, _ = split(wire(c, start(), body(b"x")))
    assert b"Connection: close" in fields and not c.keep_alive


def test_date_and_server_from_the_application_are_not_doubled() -> None:
    c = cycle()
    hs = [(b"Date", b"yesterday"), (b"Server", b"mine")]
    _, fields, _ = split(wire(c, start(200, hs), body()))
    assert [f for f in fields if f.lower().startswith((b"date", b"server"))] == [
        b"Date: yesterday", b"Server: mine",
    ]  # fmt: skip


def test_header_order_and_duplicates_are_kept_and_values_trimmed() -> None:
    hs = [[b"set-cookie", b"a=1"], (b"x", b" \tv\t"), (b"set-cookie", b"b=2")]
    _, fields, _ = split(wire(cycle(), start(200, hs), body()))
    assert fields[:3] == [b"set-cookie: a=1", b"x: v", b"set-cookie: b=2"]


def test_a_large_body_is_a_piece_of_its_own() -> None:
    c = cycle()
    c.send(start())
    out = c.send(body(b"x" * 100_000))
    assert isinstance(out, list) and out[1] == b"x" * 100_000


def test_bytearray_and_memoryview_bodies_are_accepted() -> None:
    c = cycle()
    assert split(wire(c, start(), body(bytearray(b"ab"), True), body(memoryview(b"c"))))[2] == (
        b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
    )


# -- invalid messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"status": 200},
        "http.response.start",
        {"type": "http.response.nope"},
        start(99),
        start(103),
        start(600),
        start("200"),  # type: ignore[arg-type]
        start(200, [(b"x", "str")]),
        start(200, [("x", b"v")]),
        start(200, [(b"bad name", b"v")]),
        start(200, [(b"x", b"a\r\nInjected: 1")]),
        start(200, [(b"x", b"nul\x00")]),
        start(200, [(b"x",)]),
        start(200, 5),
        start(200, [(b"content-length", b"abc")]),
        start(200, trailers="yes"),
    ],
)
def test_an_invalid_start_raises(message: Any) -> None:
    with pytest.raises(LocalProtocolError):
        cycle().send(message)


@pytest.mark.parametrize(
    "message",
    [body("text"), {"type": "http.response.body", "body": b"", "more_body": 1}],  # type: ignore[arg-type]
)
def test_an_invalid_body_raises(message: Any) -> None:
    c = cycle()
    c.send(start())
    with pytest.raises(LocalProtocolError):
        c.send(message)


def test_unknown_extra_keys_are_ignored() -> None:
    c = cycle()
    c.send({**start(), "extra": object()})
    assert split(wire(c, {**body(b"x"), "whatever": 1}))[2] == b"x"


def test_defaults_body_empty_more_body_false() -> None:
    c = cycle()
    c.send({"type": "http.response.start", "status": 200})
    assert split(wire(c, {"type": "http.response.body"}))[1][0] == b"content-length: 0"
    assert c.complete


def test_messages_out_of_order_raise() -> None:
    with pytest.raises(LocalProtocolError):
        cycle().send(body(b"x"))  # body before start
    c = cycle()
    c.send(start())
    with pytest.raises(LocalProtocolError):
        c.send(start())  # start twice


def test_sending_after_the_response_is_complete_raises() -> None:
    c = cycle()
    wire(c, start(), body(b"x"))
    for message in (body(b"more"), start(), {"type": "http.response.trailers"}):
        with pytest.raises(LocalProtocolError):
            c.send(message)


def test_conflicting_content_lengths_raise() -> None:
    c = cycle()
    c.send(start(200, [(b"content-length", b"1"), (b"content-length", b"2")]))
    with pytest.raises(LocalProtocolError):
        c.send(body(b"x"))


# -- trailers -------------------------------------------------------------------------------------


def trailers(headers: Any, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.trailers", "headers": headers, "more_trailers": more}


def test_trailers_follow_a_chunked_body() -> None:
    c = cycle()
    raw = wire(c, start(200, trailers=True), body(b"abc"))
    assert not c.complete and c.phase is Phase.TRAILERS
    raw += wire(c, trailers([(b"x-checksum", b"1")], more=True), trailers([(b"x-b", b"2")]))
    _status, fields, rest = split(raw)
    assert b"Transfer-Encoding: chunked" in fields
    assert rest == b"3\r\nabc\r\n0\r\nx-checksum: 1\r\nx-b: 2\r\n\r\n"
    assert c.complete


def test_trailers_with_a_content_length_are_dropped_but_awaited() -> None:
    c = cycle()
    raw = wire(c, start(200, [(b"content-length", b"1")], trailers=True), body(b"a"))
    assert not c.complete
    assert wire(c, trailers([(b"x", b"1")])) == b""
    assert c.complete and split(raw)[2] == b"a"


def test_a_framing_field_in_a_trailer_raises() -> None:
    c = cycle()
    wire(c, start(200, trailers=True), body(b"a"))
    with pytest.raises(LocalProtocolError):
        c.send(trailers([(b"content-length", b"1")]))


def test_trailers_without_asking_for_them_raise() -> None:
    c = cycle()
    wire(c, start(), body(b"a", more=True))
    with pytest.raises(LocalProtocolError):
        c.send(trailers([]))


# -- early hints, pathsend ------------------------------------------------------------------------


def test_early_hint_is_a_103_before_the_response() -> None:
    c = cycle()
    hint = {"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]}
    assert c.send(hint) == b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n"
    assert not c.head_sent
    assert split(wire(c, start(), body(b"x")))[0] == b"HTTP/1.1 200 OK"


def test_early_hint_is_not_sent_to_http10_and_not_after_start() -> None:
    hint = {"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]}
    assert cycle(get(version=b"1.0")).send(hint) == b""
    c = cycle()
    c.send(start())
    with pytest.raises(LocalProtocolError):
        c.send(hint)
    with pytest.raises(LocalProtocolError):
        cycle().send({"type": "http.response.early_hint", "links": [b"a\r\nb"]})


def test_pathsend_gives_the_engine_the_path_and_a_head_with_the_file_size() -> None:
    c = cycle()
    c.send(start(200, [(b"content-type", b"text/plain")]))
    action = c.send({"type": "http.response.pathsend", "path": "/srv/file.txt"})
    assert isinstance(action, PathSend) and action.path == "/srv/file.txt"
    assert not c.head_sent
    head_, count = c.file_head(1234)
    assert b"content-length: 1234" in split(head_)[1] and count == 1234
    assert c.complete and c.head_sent


def test_pathsend_checks_the_applications_content_length_and_head_sends_none() -> None:
    c = cycle()
    c.send(start(200, [(b"content-length", b"10")]))
    c.send({"type": "http.response.pathsend", "path": "/f"})
    with pytest.raises(LocalProtocolError):
        c.file_head(11)
    c = cycle(head())
    c.send(start())
    c.send({"type": "http.response.pathsend", "path": "/f"})
    head_, count = c.file_head(11)
    assert count == 0 and split(head_)[2] == b""


@pytest.mark.parametrize("path", ["relative.txt", b"/bytes", None])
def test_pathsend_needs_an_absolute_str_path(path: Any) -> None:
    c = cycle()
    c.send(start())
    with pytest.raises(LocalProtocolError):
        c.send({"type": "http.response.pathsend", "path": path})


def test_pathsend_after_a_body_raises() -> None:
    c = cycle()
    wire(c, start(), body(b"a", more=True))
    with pytest.raises(LocalProtocolError):
        c.send({"type": "http.response.pathsend", "path": "/f"})


def test_error_page_closes_and_says_why() -> None:
    page = error_page(503, "too many requests in flight", DATE)
    status, fields, rest = split(page)
    assert status == b"HTTP/1.1 503 Service Unavailable"
    assert b"Connection: close" in fields
    assert rest == b"503 Service Unavailable\ntoo many requests in flight\n"


def test_a_post_request_cycle_keeps_alive() -> None:
    req = request(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
    c = cycle(req)
    wire(c, start(201), body(b"ok"))
    assert c.keep_alive and c.status == 201


def test_the_field_cache_is_bounded() -> None:
    cache = FieldCache()
    c = HTTPCycle(get(), cache, DATE)
    c.send(start(200, [(b"x-n", b"%d" % n) for n in range(600)]))
    assert len(cache._fields) == 512  # past the bound, fields are checked each time
    assert b"x-n: 599" in wire(c, body())


# -- the head cache ---------------------------------------------------------------------------

SAME = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


def test_a_remembered_head_is_the_head_decided_afresh_with_the_current_date() -> None:
    cache = FieldCache()
    later = b"Wed, 02 Dec 2026 00:00:00 GMT"
    first = wire(HTTPCycle(get(), cache, DATE), start(200, SAME), body(b"ok"))
    assert len(cache.heads) == 1
    second = HTTPCycle(get(), cache, later)
    again = wire(second, start(200, SAME), body(b"ok"))
    assert again == first.replace(DATE, later)
    assert again == wire(HTTPCycle(get(), FieldCache(), later), start(200, SAME), body(b"ok"))
    assert second.complete and second.keep_alive and len(cache.heads) == 1


@pytest.mark.parametrize(
    ("req", "status", "expected"),
    [
        (head(), 200, b"content-length: 2"),  # HEAD: fields kept, no body
        (get(extra=b"Connection: close\r\n"), 200, b"Connection: close"),
        (get(version=b"1.0"), 200, b"Connection: close"),  # 1.0 without keep-alive
        (get(), 204, None),  # a 204 drops its Content-Length
    ],
)
def test_a_remembered_head_is_never_served_to_other_request_facts(
    req: Request, status: int, expected: bytes | None
) -> None:
    cache = FieldCache()
    wire(HTTPCycle(get(), cache, DATE), start(200, SAME), body(b"ok"))  # remembered
    c = HTTPCycle(req, cache, DATE)
    _, fields, rest = split(wire(c, start(status, SAME), body(b"" if status == 204 else b"ok")))
    if expected is None:
        assert not any(f.startswith(b"content-length") for f in fields)
    else:
        assert expected in fields
    assert rest == (b"ok" if req.method == b"GET" and status == 200 else b"")
    assert len(cache.heads) == 2


def test_a_head_that_depends_on_the_body_length_is_decided_each_time() -> None:
    cache = FieldCache()
    plain = [(b"content-type", b"text/plain")]
    for data in (b"a", b"abc", b""):
        _, fields, rest = split(wire(HTTPCycle(get(), cache, DATE), start(200, plain), body(data)))
        assert b"content-length: %d" % len(data) in fields and rest == data
    c = HTTPCycle(get(), cache, DATE)  # streamed: chunked, again not remembered
    _, fields, _ = split(wire(c, start(200, plain), body(b"a", more=True)))
    assert b"Transfer-Encoding: chunked" in fields
    assert cache.heads == {}


def test_the_head_cache_is_bounded() -> None:
    cache = FieldCache()
    for n in range(300):
        fields = [(b"content-length", b"1"), (b"x-n", b"%d" % n)]
        raw = wire(HTTPCycle(get(), cache, DATE), start(200, fields), body(b"x"))
        assert b"x-n: %d\r\n" % n in raw
    assert len(cache.heads) == 256  # past the bound, heads are decided each time


def test_file_head_without_pathsend_raises() -> None:
    c = cycle()
    c.send(start())
    with pytest.raises(LocalProtocolError):
        c.file_head(10)


def test_error_page_without_detail() -> None:
    assert split(error_page(400, "", DATE))[2] == b"400 Bad Request\n"
