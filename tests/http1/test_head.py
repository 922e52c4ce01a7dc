"""maybe_parse_request_head / maybe_parse_response_head directly, and fast path == slow path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError
from kakehashi.http1._head import (
    _MAX_CACHED_HEAD,
    _MAX_CACHED_HEADS,
    parse_fields,
    split_fields,
)
from tests.fuzz.strategies import Message, messages, mutated

L = http1.DEFAULT_LIMITS


def test_parse_at_an_offset_in_a_bytearray() -> None:
    buf = bytearray(b"junkGET /a HTTP/1.1\r\nHost: h\r\n\r\nrest")
    parsed = http1.maybe_parse_request_head(buf, 4, L)
    assert parsed is not None
    request, end = parsed
    assert buf[end:] == b"rest"
    assert type(request.method) is bytes and type(request.target) is bytes
    assert request.headers.get(b"host") == b"h"


def test_incomplete_head_returns_none() -> None:
    assert http1.maybe_parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\n", 0, L) is None
    assert http1.maybe_parse_request_head(b"\r\n\r", 0, L) is None
    assert http1.maybe_parse_request_head(b"", 0, L) is None


def test_head_with_no_fields_in_http10() -> None:
    parsed = http1.maybe_parse_request_head(b"GET / HTTP/1.0\r\n\r\n", 0, L)
    assert parsed is not None and len(parsed[0].headers) == 0


def test_http2_error_is_clear() -> None:
    with pytest.raises(RemoteProtocolError, match=r"HTTP/2\.0 is not supported") as info:
        http1.maybe_parse_request_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, L)
    assert info.value.status_hint == 505


# The well-known names in another case miss the constant set and take the slow path; both
# must give the same fields and the same framing.
HEADS = [
    b"Host: a\r\nContent-Length: 5\r\nConnection: close",
    b"Host: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue",
    b"Host: a\r\nAccept:  x  \r\nCookie: a=b; c=d\r\nUser-Agent: t/1",
    b"Host: a\r\nHost: b",
    b"Host: a\r\nContent-Length: 1\r\nContent-Length: 2",
    b"Host: a\r\nConnection: keep-alive\r\nConnection: close",
]


def _odd_case(block: bytes) -> bytes:
    lines = []
    for line in block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        odd = bytes(c ^ 0x20 if i % 2 and chr(c).isalpha() else c for i, c in enumerate(name))
        lines.append(odd + b":" + value)
    return b"\r\n".join(lines)


def _outcome(block: bytes) -> object:
    try:
        parsed = http1.maybe_parse_request_head(b"POST / HTTP/1.1\r\n" + block + b"\r\n\r\n", 0, L)
    except RemoteProtocolError as e:
        return e.status_hint
    assert parsed is not None
    r = parsed[0]
    fields = [(n.lower(), v) for n, v in r.headers]
    return fields, r.framing, r.content_length, r.keep_alive, r.expect_continue


@pytest.mark.parametrize("block", HEADS)
def test_fast_and_slow_paths_agree(block: bytes) -> None:
    slow = _odd_case(block)
    assert slow != block
    assert _outcome(slow) == _outcome(block)
    fast_fields, _ = split_fields(block, L)
    assert fast_fields == parse_fields(block + b"\r\n", L)


def test_field_line_limit_is_the_same_on_both_paths() -> None:
    limits = http1.Limits(max_field_bytes=20)
    ok = b"Host: a\r\nAccept: " + b"x" * 12  # 20 bytes without CRLF
    assert _outcome_with(ok, limits) == 200
    assert _outcome_with(_odd_case(ok), limits) == 200
    assert _outcome_with(ok + b"x", limits) == 431
    assert _outcome_with(_odd_case(ok + b"x"), limits) == 431


def _outcome_with(block: bytes, limits: http1.Limits) -> int:
    try:
        http1.maybe_parse_request_head(b"GET / HTTP/1.1\r\n" + block + b"\r\n\r\n", 0, limits)
    except RemoteProtocolError as e:
        return e.status_hint
    return 200


def test_too_many_fields_is_checked_before_anything_else() -> None:
    limits = http1.Limits(max_fields=2)
    assert _outcome_with(b"Host: a\r\nbad line\r\nX: y", limits) == 431


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"X: a\rb\r\n", "bare CR"),
        (b" X: a\r\n", "folding"),
        (b"X\r\n", "without a colon"),
        (b"X : a\r\n", "between header name and colon"),
        (b"X(: a\r\n", "invalid header name"),
        (b"X: a\x01\r\n", "invalid byte"),
    ],
)
def test_slow_path_names_the_broken_rule(line: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        parse_fields(line, L)


def test_parse_fields_counts_fields() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_fields(b"A: 1\r\nB: 2\r\n", http1.Limits(max_fields=1))
    assert info.value.status_hint == 431


# --- responses ------------------------------------------------------------------------------


def test_response_head() -> None:
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    parsed = http1.maybe_parse_response_head(raw, 0, b"GET", L)
    assert parsed is not None
    response, end = parsed
    assert (response.status_code, response.reason, end) == (404, b"Not Found", len(raw))
    assert response.framing is http1.Framing.LENGTH


def test_response_head_without_reason_or_fields() -> None:
    parsed = http1.maybe_parse_response_head(b"HTTP/1.1 200\r\n\r\n", 0, b"GET", L)
    assert parsed is not None
    assert parsed[0].reason == b"" and parsed[0].framing is http1.Framing.CLOSE


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"HTTP/1.1 20 OK\r\n\r\n", 400),
        (b"HTTP/1.1 000 Zero\r\n\r\n", 400),
        (b"HTTP/2.0 200 OK\r\n\r\n", 505),
        (b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", 400),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 3000 + b"\r\n", 431),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 3000, 431),
    ],
)
def test_bad_response_heads(raw: bytes, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        http1.maybe_parse_response_head(raw, 0, b"GET", L)
    assert info.value.status_hint == status


def test_incomplete_response_head() -> None:
    assert http1.maybe_parse_response_head(b"HTTP/1.1 200 OK\r\n", 0, b"GET", L) is None


# --- the head cache -------------------------------------------------------------------------


def _parsed(raw: bytes, cache: http1.HeadCache | None) -> object:
    try:
        parsed = http1.maybe_parse_request_head(raw, 0, L, None, cache)
    except RemoteProtocolError as e:
        return "error", e.status_hint, str(e)
    return parsed


@settings(max_examples=300, deadline=None)
@given(st.lists(messages().map(Message.serialise) | mutated(), min_size=1, max_size=6))
def test_a_head_seen_before_gives_what_parsing_it_gives(raws: list[bytes]) -> None:
    cache = http1.HeadCache(L)
    for _ in range(2):  # the second time round, every head that parsed is in the cache
        for raw in raws:
            assert _parsed(raw, cache) == _parsed(raw, None)


def test_only_heads_that_parsed_are_kept_and_each_request_is_new() -> None:
    cache = http1.HeadCache(L)
    bad = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
    for _ in range(2):
        with pytest.raises(RemoteProtocolError):
            http1.maybe_parse_request_head(bad, 0, L, None, cache)
    assert cache.parsed == {}
    good = b"\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y"  # an empty line first; what follows
    first = http1.maybe_parse_request_head(good, 0, L, None, cache)
    again = http1.maybe_parse_request_head(good, 0, L, None, cache)
    assert list(cache.parsed) == [b"GET /x HTTP/1.1\r\nHost: a"]
    assert first is not None and again is not None
    assert first == again and first[1] == again[1] == len(good) - len(b"GET /y")
    assert first[0] is not again[0]  # a request changed by its reader changes no other


def test_the_cache_is_bounded_and_emptied_when_full() -> None:
    cache = http1.HeadCache(L)
    for i in range(_MAX_CACHED_HEADS + 10):
        http1.maybe_parse_request_head(
            b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i, 0, L, None, cache
        )
        assert len(cache.parsed) <= _MAX_CACHED_HEADS
    assert len(cache.parsed) == 10  # emptied once, at the first head past the bound
    long = b"GET / HTTP/1.1\r\nHost: a\r\nCookie: %s\r\n\r\n" % (b"c" * _MAX_CACHED_HEAD)
    cache.parsed.clear()
    assert http1.maybe_parse_request_head(long, 0, L, None, cache) is not None
    assert cache.parsed == {}  # too long to keep


def test_a_cache_made_for_other_limits_is_not_used() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nAccept: b\r\n\r\n"
    cache = http1.HeadCache(L)
    assert http1.maybe_parse_request_head(head, 0, L, None, cache) is not None
    strict = http1.Limits(max_fields=1)
    with pytest.raises(RemoteProtocolError, match="more than 1 header fields"):
        http1.maybe_parse_request_head(head, 0, strict, None, cache)
