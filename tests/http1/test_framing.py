"""Framing decisions (RFC 9112 §6.3) for requests, received responses and sent responses."""

from __future__ import annotations

import pytest

from kakehashi import http1
from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.http1._framing import request_info, response_info

F = http1.Framing
L = http1.DEFAULT_LIMITS


def test_request_defaults() -> None:
    info = request_info(b"1.1", {b"host": [b"a"]}, L)
    assert (info.framing, info.content_length, info.keep_alive) == (F.NONE, None, True)
    assert not request_info(b"1.0", {}, L).keep_alive


def test_expect_continue_only_with_a_body() -> None:
    found = {b"host": [b"a"], b"expect": [b"100-continue"], b"content-length": [b"0"]}
    assert not request_info(b"1.1", found, L).expect_continue
    found[b"content-length"] = [b"3"]
    assert request_info(b"1.1", found, L).expect_continue
    found = {b"host": [b"a"], b"expect": [b"100-continue"], b"transfer-encoding": [b"chunked"]}
    assert request_info(b"1.1", found, L).expect_continue
    assert not request_info(b"1.1", {b"host": [b"a"], b"expect": [b","]}, L).expect_continue


def test_content_length_with_many_leading_zeros() -> None:
    info = request_info(b"1.1", {b"host": [b"a"], b"content-length": [b"0" * 30 + b"7"]}, L)
    assert info.content_length == 7


@pytest.mark.parametrize(
    ("value", "keep10", "keep11"),
    [
        (b"keep-alive", True, True),
        (b"close", False, False),
        (b"Upgrade", False, True),
        (b"upgrade, close", False, False),
        (b"foo, Keep-Alive", True, True),
        (b"keep-alive, close", False, False),
    ],
)
def test_keep_alive_tokens(value: bytes, keep10: bool, keep11: bool) -> None:
    assert request_info(b"1.0", {b"connection": [value]}, L).keep_alive is keep10
    assert request_info(b"1.1", {b"host": [b"a"], b"connection": [value]}, L).keep_alive is keep11


@pytest.mark.parametrize(
    ("method", "status", "found", "framing", "keep"),
    [
        (b"GET", 200, {b"content-length": [b"3"]}, F.LENGTH, True),
        (b"GET", 200, {b"transfer-encoding": [b"gzip, chunked"]}, F.CHUNKED, True),
        (b"GET", 200, {b"transfer-encoding": [b"gzip"]}, F.CLOSE, False),
        (b"GET", 200, {b"transfer-encoding": [b""]}, F.CLOSE, False),
        (b"GET", 200, {}, F.CLOSE, False),
        (b"HEAD", 200, {b"content-length": [b"3"]}, F.NONE, True),
        (b"GET", 204, {}, F.NONE, True),
        (b"GET", 304, {b"content-length": [b"3"]}, F.NONE, True),
        (b"GET", 101, {}, F.NONE, True),
        (b"CONNECT", 200, {}, F.NONE, False),
        (b"CONNECT", 407, {b"content-length": [b"0"]}, F.LENGTH, True),
        (b"GET", 200, {b"content-length": [b"0"], b"connection": [b"close"]}, F.LENGTH, False),
    ],
)
def test_response_framing(
    method: bytes, status: int, found: dict[bytes, list[bytes]], framing: F, keep: bool
) -> None:
    info = response_info(method, status, b"1.1", found)
    assert (info.framing, info.keep_alive) == (framing, keep)


@pytest.mark.parametrize(
    ("version", "found"),
    [
        (b"1.0", {b"transfer-encoding": [b"chunked"]}),
        (b"1.1", {b"transfer-encoding": [b"chunked"], b"content-length": [b"1"]}),
        (b"1.1", {b"content-length": [b"1", b"2"]}),
        (b"1.1", {b"content-length": [b"x"]}),
    ],
)
def test_ambiguous_response_framing(version: bytes, found: dict[bytes, list[bytes]]) -> None:
    with pytest.raises(RemoteProtocolError):
        response_info(b"GET", 200, version, found)


def test_response_content_length_has_no_body_limit() -> None:
    info = response_info(b"GET", 200, b"1.1", {b"content-length": [b"9" * 18]})
    assert info.content_length == int(b"9" * 18)


# --- outgoing -------------------------------------------------------------------------------


def out(
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    method: bytes = b"GET",
    version: bytes = b"1.1",
    keep: bool = True,
) -> http1.OutgoingFraming:
    return http1.outgoing_response_framing(method, version, keep, status, headers or [])


def test_outgoing_length_chunked_close() -> None:
    assert out(headers=[(b"Content-Length", b"3")]).framing is F.LENGTH
    chunked = out()
    assert chunked.framing is F.CHUNKED and (b"Transfer-Encoding", b"chunked") in chunked.headers
    close = out(version=b"1.0", keep=True)
    assert close.framing is F.CLOSE and not close.keep_alive
    assert (b"Connection", b"close") in close.headers


def test_outgoing_no_body_statuses() -> None:
    assert out(204, [(b"Content-Length", b"0")]).headers == []
    assert out(100).framing is F.NONE
    head = out(headers=[(b"Content-Length", b"9")], method=b"HEAD")
    assert head.framing is F.NONE and head.headers == [(b"Content-Length", b"9")]
    assert out(304).framing is F.NONE


def test_outgoing_connection_handling() -> None:
    assert out(keep=False).headers[-1] == (b"Connection", b"close")
    keep10 = out(headers=[(b"Content-Length", b"0")], version=b"1.0")
    assert keep10.headers[-1] == (b"Connection", b"keep-alive") and keep10.keep_alive
    app_close = out(headers=[(b"Connection", b"close"), (b"Content-Length", b"0")])
    assert not app_close.keep_alive and len(app_close.headers) == 2
    app_other = out(headers=[(b"Connection", b"x-thing"), (b"Content-Length", b"0")])
    assert app_other.keep_alive and len(app_other.headers) == 2


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Content-Length", b"x")],
        [(b"Content-Length", b"1"), (b"Content-Length", b"2")],
        [(b"Transfer-Encoding", b"chunked")],
    ],
)
def test_outgoing_refusals(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(LocalProtocolError):
        out(headers=headers)


def test_outgoing_repeated_equal_length() -> None:
    framing = out(headers=[(b"Content-Length", b"1"), (b"content-length", b"1")])
    assert framing.content_length == 1


def test_decide_response_framing_from_the_facts_alone() -> None:
    decide = http1.decide_response_framing
    length = decide(b"GET", b"1.1", True, 200, 5, False, False)
    assert (length.framing, length.content_length, length.keep_alive, length.added) == (
        F.LENGTH, 5, True, (),
    )  # fmt: skip
    chunked = decide(b"GET", b"1.1", False, 200, None, False, False)
    assert chunked.added == ((b"Transfer-Encoding", b"chunked"), (b"Connection", b"close"))
    assert decide(b"GET", b"1.1", True, 204, 0, False, False).drop_length
    assert not decide(b"GET", b"1.1", True, 204, None, False, False).drop_length
    app_close = decide(b"GET", b"1.1", True, 200, 0, True, True)
    assert not app_close.keep_alive and app_close.added == ()
    assert decide(b"GET", b"1.0", True, 200, 0, False, False).added == (
        (b"Connection", b"keep-alive"),
    )
