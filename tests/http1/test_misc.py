"""Headers, ReceiveBuffer, writers, target splitting and percent-decoding."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.http1._state import Event, transition

# --- Headers --------------------------------------------------------------------------------


def test_headers_lookup_is_case_insensitive_and_ordered() -> None:
    h = http1.Headers([(b"Accept", b"a"), (b"X", b"1"), (b"accept", b"b, ,c")])
    assert h.get(b"ACCEPT") == b"a, b, ,c"
    assert h.get(b"x") == b"1"
    assert h.get(b"missing") is None and h.get(b"missing", b"d") == b"d"
    assert h.get_all(b"Accept") == [b"a", b"b, ,c"]
    assert h.get_list(b"accept") == [b"a", b"b", b"c"]
    assert b"x" in h and "x" not in h and b"y" not in h
    assert list(h) == h.raw() and len(h) == 3
    assert h == http1.Headers(h.raw()) and h != http1.Headers()
    assert h.__eq__(object()) is NotImplemented
    assert hash(h) == hash(http1.Headers(h.raw()))
    assert repr(http1.Headers([(b"a", b"b")])) == "Headers([(b'a', b'b')])"


@pytest.mark.parametrize(
    ("name", "value"),
    [(b"X Y", b"v"), (b"", b"v"), (b"X", b"a\rb"), (b"X", b"a\nb"), (b"X", b"\x00"), (b"X", b" a")],
)
def test_validate_fields_refuses(name: bytes, value: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        http1.validate_fields([(name, value)])


def test_validate_fields_accepts() -> None:
    fields = [(b"X", b""), (b"Y", b"a b\tc"), (b"Z", b"caf\xc3\xa9")]
    assert http1.validate_fields(fields) == fields


# --- ReceiveBuffer --------------------------------------------------------------------------


def test_receive_buffer() -> None:
    buf = http1.ReceiveBuffer()
    buf.append(b"line one\nline two")
    assert buf.find(b"two") == 14 and buf.find(b"zzz") == -1
    assert buf.extract_line(100) == b"line one\n"
    assert buf.extract_line(3) is None
    assert buf.pos == 9 and len(buf) == 8
    assert buf.extract(100) == b"line two"
    assert len(buf.raw) == 0 and buf.pos == 0


def test_receive_buffer_compacts_a_large_consumed_prefix() -> None:
    buf = http1.ReceiveBuffer()
    buf.append(b"a" * 5000 + b"tail")
    buf.advance_to(5000)
    assert (buf.pos, bytes(buf)) == (0, b"tail")
    buf.append(b"x" * 10)
    buf.advance_to(1)
    assert buf.pos == 1


# --- writers --------------------------------------------------------------------------------


def test_write_heads() -> None:
    assert http1.write_response_head(200, [(b"A", b"b")]) == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"
    assert http1.write_response_head(299, [], b"Fine") == b"HTTP/1.1 299 Fine\r\n\r\n"
    assert http1.write_response_head(299, []) == b"HTTP/1.1 299 \r\n\r\n"
    assert http1.write_request_head(b"GET", b"/", [(b"Host", b"a")], b"1.0") == (
        b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"
    )
    assert http1.reason_phrase(404) == b"Not Found" and http1.reason_phrase(799) == b""


@pytest.mark.parametrize(
    "call",
    [
        lambda: http1.write_response_head(99, []),
        lambda: http1.write_response_head(600, []),
        lambda: http1.write_response_head(200, [], b"bad\r\nreason"),
        lambda: http1.write_response_head(200, [(b"X", b"a\r\nInjected: 1")]),
        lambda: http1.write_request_head(b"GE T", b"/", []),
        lambda: http1.write_request_head(b"GET", b"/a b", []),
        lambda: http1.write_request_head(b"GET", b"", []),
    ],
)
def test_writers_refuse_illegal_input(call: object) -> None:
    with pytest.raises(LocalProtocolError):
        call()  # type: ignore[operator]


def test_encode_chunk() -> None:
    assert http1.encode_chunk(b"") == b""
    assert http1.encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert http1.LAST_CHUNK == b"0\r\n\r\n"


# --- state table ----------------------------------------------------------------------------


def test_transitions() -> None:
    S = http1.State
    assert transition(S.IDLE, Event.HEAD) is S.SEND_BODY
    assert transition(S.MUST_CLOSE, Event.NOT_REUSABLE) is S.MUST_CLOSE
    assert transition(S.SEND_BODY, Event.ERROR) is S.ERROR
    assert transition(S.DONE, Event.CLOSE) is S.CLOSED
    with pytest.raises(LocalProtocolError, match="cannot head in state done"):
        transition(S.DONE, Event.HEAD)


# --- targets and percent-decoding -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        (b"GET", b"/a/b?x=1?y", (b"/a/b", b"x=1?y")),
        (b"GET", b"/", (b"/", b"")),
        (b"GET", b"http://h/p?q", (b"/p", b"q")),
        (b"GET", b"https://h:8443", (b"/", b"")),
        (b"GET", b"http://h?q", (b"/", b"q")),
        (b"CONNECT", b"h:443", (b"h:443", b"")),
        (b"CONNECT", b"[::1]:443", (b"[::1]:443", b"")),
        (b"OPTIONS", b"*", (b"*", b"")),
        (b"OPTIONS", b"/x", (b"/x", b"")),
    ],
)
def test_split_target(method: bytes, target: bytes, expected: tuple[bytes, bytes]) -> None:
    assert http1.split_target(method, target) == expected


@pytest.mark.parametrize(
    ("method", "target"),
    [
        (b"GET", b"/a#b"),
        (b"GET", b"*"),
        (b"GET", b"h:443"),
        (b"GET", b"http://"),
        (b"GET", b"http://h/p#f"),
        (b"CONNECT", b"/"),
        (b"CONNECT", b"h"),
        (b"CONNECT", b"*"),
    ],
)
def test_split_target_refuses(method: bytes, target: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        http1.split_target(method, target)
    assert info.value.status_hint == 400


@pytest.mark.parametrize(
    ("target", "plain"),
    [
        (b"/", True),
        (b"/a/b.txt", True),
        (b"/%E5%A4%AA", False),
        (b"/a?x=1", False),
        (b"/a#f", False),
        (b"*", False),
        (b"http://h/p", False),
        (b"", False),
    ],
)
def test_is_plain_path(target: bytes, plain: bool) -> None:
    """The engines' shortcut: a plain target is split and decoded as itself."""
    assert http1.is_plain_path(target) is plain
    if plain:
        assert http1.split_target(b"GET", target) == (target, b"")
        assert http1.decode_path(target) == target


def test_percent_decoding() -> None:
    assert http1.decode_path(b"/plain") == b"/plain"
    assert http1.decode_path(b"/a%2Fb%20c") == b"/a/b c"
    assert http1.decode_path_text(b"/greeting/%E5%A4%AA%E9%83%8E") == "/greeting/太郎"
    for bad in (b"/%", b"/%2", b"/%G0", b"/%%41"):
        with pytest.raises(RemoteProtocolError):
            http1.decode_path(bad)
    with pytest.raises(RemoteProtocolError, match="UTF-8"):
        http1.decode_path_text(b"/%FF")
