"""Frames and masking: RFC 6455 §5.7's examples, header checks, close payloads, round trips."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.errors import LocalWebSocketError, RemoteWebSocketError
from kakehashi.websocket import (
    FrameHeader,
    Opcode,
    apply_mask,
    close_payload,
    parse_close_payload,
    parse_frame_header,
    serialize_frame,
)
from kakehashi.websocket import _mask as mask_module
from kakehashi.websocket._mask import python_apply_mask
from tests.conftest import SRC

KEY = bytes.fromhex("37fa213d")


def naive_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    return bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(data))


# --- RFC 6455 §5.7 ----------------------------------------------------------------------------

RFC_EXAMPLES = [
    # (frame bytes, fin, opcode, payload, mask)
    (bytes.fromhex("810548656c6c6f"), True, Opcode.TEXT, b"Hello", None),
    (bytes.fromhex("818537fa213d7f9f4d5158"), True, Opcode.TEXT, b"Hello", KEY),
    (bytes.fromhex("010348656c"), False, Opcode.TEXT, b"Hel", None),
    (bytes.fromhex("80026c6f"), True, Opcode.CONTINUATION, b"lo", None),
    (bytes.fromhex("890548656c6c6f"), True, Opcode.PING, b"Hello", None),
    (bytes.fromhex("8a8537fa213d7f9f4d5158"), True, Opcode.PONG, b"Hello", KEY),
    (b"\x82\x7e\x01\x00" + bytes(256), True, Opcode.BINARY, bytes(256), None),
    (
        b"\x82\x7f" + struct.pack("!Q", 65536) + bytes(65536),
        True,
        Opcode.BINARY,
        bytes(65536),
        None,
    ),
]


@pytest.mark.parametrize("wire, fin, opcode, payload, mask", RFC_EXAMPLES)
def test_rfc6455_examples_parse_and_serialize(
    wire: bytes, fin: bool, opcode: Opcode, payload: bytes, mask: bytes | None
) -> None:
    head = parse_frame_header(wire)
    assert head is not None
    assert (head.fin, head.opcode, head.rsv, head.length, head.mask) == (
        fin, opcode, 0, len(payload), mask,
    )  # fmt: skip
    body = wire[head.size :]
    assert (apply_mask(body, mask) if mask else body) == payload
    assert serialize_frame(opcode, payload, fin=fin, mask=mask) == wire


def test_incomplete_headers_need_more_bytes() -> None:
    wire = b"\x82\xff" + struct.pack("!Q", 70000) + KEY
    for cut in range(len(wire)):
        assert parse_frame_header(wire[:cut]) is None
    head = parse_frame_header(b"junk" + wire, 4)
    assert head == FrameHeader(True, Opcode.BINARY, 0, 70000, KEY, 14)


@pytest.mark.parametrize(
    "wire, message",
    [
        (b"\x83\x00", "reserved opcode 0x3"),
        (b"\x8b\x00", "reserved opcode 0xb"),
        (b"\x09\x00", "fragmented PING"),
        (b"\x88\x7e\x00\x7e", "over 125"),
        (b"\xc9\x00", "RSV bits set on a PING"),
        (b"\xc1\x00", "no extension negotiated"),
        (b"\xa1\x00", "no extension negotiated"),
        (b"\x91\x00", "no extension negotiated"),
        (b"\x82\x7f\x80" + bytes(7), "most significant bit"),
    ],
)
def test_bad_headers_are_refused_at_once(wire: bytes, message: str) -> None:
    with pytest.raises(RemoteWebSocketError, match=message) as info:
        parse_frame_header(wire)
    assert info.value.close_code == 1002


def test_rsv1_allowed_when_negotiated() -> None:
    head = parse_frame_header(b"\xc1\x00", rsv_allowed=4)
    assert head is not None and head.rsv1
    with pytest.raises(RemoteWebSocketError):
        parse_frame_header(b"\xe1\x00", rsv_allowed=4)  # RSV2 still not


def test_a_2_63_length_is_refused_after_ten_bytes() -> None:
    with pytest.raises(RemoteWebSocketError):
        parse_frame_header(b"\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff")
    head = parse_frame_header(b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff")
    assert head is not None and head.length == 2**63 - 1  # the limit is the caller's


@pytest.mark.parametrize("n, length_bytes", [(0, 0), (125, 0), (126, 2), (65535, 2), (65536, 8)])
def test_length_uses_the_shortest_encoding(n: int, length_bytes: int) -> None:
    assert len(serialize_frame(Opcode.BINARY, bytes(n))) == 2 + length_bytes + n


@given(
    st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION]),
    st.binary(max_size=70000),
    st.booleans(),
    st.booleans(),
    st.binary(min_size=4, max_size=4),
)
def test_round_trip(opcode: Opcode, payload: bytes, fin: bool, masked: bool, key: bytes) -> None:
    mask = key if masked else None
    wire = serialize_frame(opcode, payload, fin=fin, rsv=4, mask=mask)
    head = parse_frame_header(wire, 0, rsv_allowed=4)
    assert head is not None
    assert (head.fin, head.opcode, head.rsv1, head.length, head.mask) == (
        fin, opcode, True, len(payload), mask,
    )  # fmt: skip
    body = wire[head.size :]
    assert len(body) == head.length
    assert (apply_mask(body, key) if masked else body) == payload


# --- masking ----------------------------------------------------------------------------------


# Both ways of masking, always: the C loop of the ``speedups`` extra (installed with the test
# extras) and the pure-Python one that runs without it.
MASKERS = [pytest.param(python_apply_mask, id="python")]
if mask_module.ACCELERATED:
    MASKERS.append(pytest.param(mask_module.apply_mask, id="c"))
Masker = Callable[..., bytes]


def test_the_c_loop_is_used_when_installed() -> None:
    # The test extras install websockets: its speedups must be found, or the bench's figures
    # would be of the pure-Python path without saying so.
    pytest.importorskip("websockets.speedups")
    assert mask_module.ACCELERATED is (not os.environ.get("KAKEHASHI_PURE_PYTHON"))


def test_kakehashi_pure_python_refuses_the_c_loop() -> None:
    code = "from kakehashi.websocket import _mask; print(_mask.ACCELERATED)"
    env = dict(os.environ, KAKEHASHI_PURE_PYTHON="1", PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("mask", MASKERS)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 16, 4096, 8191, 8192, 8193, 65536, 100003])
def test_mask_matches_the_definition(mask: Masker, n: int) -> None:
    data, key = os.urandom(n), os.urandom(4)
    assert mask(data, key) == naive_mask(data, key)


@pytest.mark.parametrize("mask", MASKERS)
@given(st.binary(max_size=20000), st.binary(min_size=4, max_size=4), st.integers(0, 20000))
def test_mask_in_pieces_equals_mask_at_once(
    mask: Masker, data: bytes, key: bytes, cut: int
) -> None:
    cut = min(cut, len(data))
    pieces = mask(data[:cut], key) + mask(data[cut:], key, cut)
    assert pieces == naive_mask(data, key)
    assert mask(pieces, key) == data


@pytest.mark.parametrize("mask", MASKERS)
def test_mask_takes_memoryview_and_bytearray(mask: Masker) -> None:
    data = bytearray(os.urandom(20000))
    assert mask(memoryview(data), KEY) == mask(bytes(data), KEY) == naive_mask(bytes(data), KEY)
    assert mask(memoryview(data)[3:], KEY, 3) == naive_mask(bytes(data[3:]), KEY, 3)


# --- close payloads ---------------------------------------------------------------------------


def test_close_payload_round_trip() -> None:
    assert close_payload(None) == b""
    assert parse_close_payload(b"") == (1005, "")
    wire = close_payload(4000, "déjà")
    assert wire == b"\x0f\xa0" + "déjà".encode()
    assert parse_close_payload(wire) == (4000, "déjà")


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_valid_codes(code: int) -> None:
    assert parse_close_payload(close_payload(code))[0] == code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
def test_codes_never_on_the_wire(code: int) -> None:
    with pytest.raises(RemoteWebSocketError, match=str(code)) as info:
        parse_close_payload(struct.pack("!H", code))
    assert info.value.close_code == 1002
    with pytest.raises(LocalWebSocketError):
        close_payload(code)


def test_bad_close_payloads() -> None:
    with pytest.raises(RemoteWebSocketError, match="one-byte") as info:
        parse_close_payload(b"\x03")
    assert info.value.close_code == 1002
    with pytest.raises(RemoteWebSocketError, match="UTF-8") as info:
        parse_close_payload(b"\x03\xe8\xce\xba\xed\xa0\x80")  # a surrogate
    assert info.value.close_code == 1007


def test_close_reason_limits() -> None:
    assert len(close_payload(1000, "x" * 123)) == 125
    with pytest.raises(LocalWebSocketError, match="at most 123"):
        close_payload(1000, "é" * 62)
    with pytest.raises(LocalWebSocketError, match="needs a close code"):
        close_payload(None, "why")
