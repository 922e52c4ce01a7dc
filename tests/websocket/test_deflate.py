"""permessage-deflate: negotiation both ways, RFC 7692 §7.2.3's examples, bounded inflation."""

from __future__ import annotations

import os
import zlib

import pytest

from kakehashi import http1
from kakehashi.errors import ConfigError, HandshakeError, RemoteWebSocketError
from kakehashi.websocket import (
    BytesMessage,
    ClientHandshake,
    Connection,
    ConnectionState,
    Deflate,
    DeflateParams,
    DeflateSettings,
    Limits,
    Opcode,
    Role,
    TextMessage,
    accept,
    parse_extensions,
    read_upgrade_request,
    serialize_frame,
)
from kakehashi.websocket._deflate import client_accept, client_offer, server_negotiate

OPEN = DeflateSettings(server_max_window_bits=None, client_max_window_bits=None)


def negotiate(offer: bytes, ours: DeflateSettings = OPEN) -> tuple[DeflateParams, bytes] | None:
    return server_negotiate(parse_extensions([offer]), ours)


# --- the server's choice ----------------------------------------------------------------------


def test_plain_offer_plain_answer() -> None:
    assert negotiate(b"permessage-deflate") == (DeflateParams(), b"permessage-deflate")


def test_server_defaults_shrink_its_own_window_only_where_allowed() -> None:
    result = negotiate(b"permessage-deflate", DeflateSettings())
    assert result is not None
    params, value = result
    # The client did not offer client_max_window_bits: we must not name it (§7.1.2.2).
    assert value == b"permessage-deflate; server_max_window_bits=12"
    assert (params.server_max_window_bits, params.client_max_window_bits) == (12, 15)
    result = negotiate(b"permessage-deflate; client_max_window_bits", DeflateSettings())
    assert result is not None
    assert result[1].endswith(b"client_max_window_bits=12")
    assert result[0].client_max_window_bits == 12


@pytest.mark.parametrize(
    "offer, answer, params",
    [
        (
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            DeflateParams(True, True),
        ),
        (
            b"permessage-deflate; server_max_window_bits=10",
            b"permessage-deflate; server_max_window_bits=10",
            DeflateParams(server_max_window_bits=10),
        ),
        (
            b"permessage-deflate; client_max_window_bits=9",
            b"permessage-deflate; client_max_window_bits=9",
            DeflateParams(client_max_window_bits=9),
        ),
        (
            b"permessage-deflate; client_max_window_bits",
            b"permessage-deflate",
            DeflateParams(),
        ),
    ],
)
def test_server_honours_the_offer(offer: bytes, answer: bytes, params: DeflateParams) -> None:
    assert negotiate(offer) == (params, answer)


def test_server_takes_the_first_acceptable_offer() -> None:
    offers = (
        b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, "
        b"permessage-deflate; foo, permessage-deflate; server_max_window_bits=11"
    )
    result = negotiate(offers)
    assert result is not None and result[0].server_max_window_bits == 11


@pytest.mark.parametrize(
    "offer",
    [
        b"permessage-deflate; server_max_window_bits=8",  # zlib cannot compress with 8
        b"permessage-deflate; server_max_window_bits",  # needs a value
        b"permessage-deflate; server_max_window_bits=16",
        b"permessage-deflate; server_max_window_bits=010",
        b"permessage-deflate; client_max_window_bits=7",
        b"permessage-deflate; server_no_context_takeover=1",
        b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        b"permessage-deflate; unknown",
        b"x-other",
    ],
)
def test_server_declines_bad_offers(offer: bytes) -> None:
    assert negotiate(offer) is None


def test_server_own_settings_apply() -> None:
    ours = DeflateSettings(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        client_max_window_bits=10,
        compress_level=1,
        mem_level=2,
    )
    result = negotiate(b"permessage-deflate; client_max_window_bits=11", ours)
    assert result == (
        DeflateParams(True, True, 9, 10, 1, 2),
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        b"server_max_window_bits=9; client_max_window_bits=10",
    )


def test_settings_are_checked() -> None:
    for kwargs in (
        {"server_max_window_bits": 8},
        {"client_max_window_bits": 16},
        {"compress_level": 10},
        {"mem_level": 0},
    ):
        with pytest.raises(ConfigError):
            DeflateSettings(**kwargs)  # type: ignore[arg-type]


# --- the client's side ------------------------------------------------------------------------


def test_client_offer() -> None:
    assert client_offer(OPEN) == b"permessage-deflate; client_max_window_bits"
    full = DeflateSettings(True, True, 10, 11)
    assert client_offer(full) == (
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        b"server_max_window_bits=10; client_max_window_bits=11"
    )


def params_of(value: bytes) -> list[tuple[str, str | None]]:
    return parse_extensions([value])[0][1]


def test_client_accepts_good_answers() -> None:
    assert client_accept([], OPEN) == DeflateParams()
    got = client_accept(params_of(b"x; server_max_window_bits=9; client_max_window_bits=10"), OPEN)
    assert (got.server_max_window_bits, got.client_max_window_bits) == (9, 10)
    got = client_accept(params_of(b"x; server_max_window_bits=12"), DeflateSettings())
    assert (got.server_max_window_bits, got.client_max_window_bits) == (12, 12)


@pytest.mark.parametrize(
    "answer, ours, message",
    [
        (b"x; unknown", OPEN, "unknown"),
        (b"x; server_max_window_bits", OPEN, "needs a value"),
        (b"x; client_max_window_bits", OPEN, "needs a value"),
        (b"x; client_max_window_bits=8", OPEN, "8 cannot"),
        (
            b"x; server_max_window_bits=12; client_max_window_bits=13",
            DeflateSettings(),
            "larger than offered",
        ),
        (b"x; server_max_window_bits=13", DeflateSettings(), "not granted"),
        (b"x", DeflateSettings(), "not granted"),
        (b"x", DeflateSettings(server_no_context_takeover=True), "not granted"),
    ],
)
def test_client_refuses_bad_answers(answer: bytes, ours: DeflateSettings, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        client_accept(params_of(answer), ours)


@pytest.mark.parametrize(
    "ours",
    [
        DeflateSettings(),
        OPEN,
        DeflateSettings(True, True, 9, 9),
        DeflateSettings(client_no_context_takeover=True, server_max_window_bits=None),
    ],
)
def test_negotiation_end_to_end_through_the_handshake(ours: DeflateSettings) -> None:
    hs = ClientHandshake(deflate=ours)
    request = hs.request(b"/", b"a")
    wire = http1.write_request_head(b"GET", b"/", request.headers.raw())
    parsed = http1.maybe_parse_request_head(wire, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    accepted = accept(read_upgrade_request(parsed[0]), deflate=DeflateSettings())
    got = hs.check_response(accepted.response())
    assert got.deflate is not None and accepted.deflate is not None
    # Both sides agree on everything negotiated (the zlib knobs are each side's own).
    assert got.deflate.server_max_window_bits == accepted.deflate.server_max_window_bits
    assert got.deflate.client_max_window_bits <= accepted.deflate.client_max_window_bits
    server = Connection(Role.SERVER, deflate=accepted.deflate)
    client = Connection(Role.CLIENT, deflate=got.deflate)
    for text in ("Hello", "Hello", "é" * 5000, ""):
        client.receive_data(server.send_text(text))
        assert client.next_event() == TextMessage(text)
        server.receive_data(client.send_text(text))
        assert server.next_event() == TextMessage(text)


# --- RFC 7692 §7.2.3 --------------------------------------------------------------------------


def client_receiving(params: DeflateParams | None = None) -> Connection:
    return Connection(Role.CLIENT, deflate=params or DeflateParams())


@pytest.mark.parametrize(
    "frames",
    [
        [bytes.fromhex("c107f248cdc9c90700")],  # §7.2.3.1
        [bytes.fromhex("4103f248cd"), bytes.fromhex("8004c9c90700")],  # fragmented
        [bytes.fromhex("c10b000500faff48656c6c6f00")],  # §7.2.3.3, a stored block
        [bytes.fromhex("c108f348cdc9c9070000")],  # §7.2.3.4, BFINAL set
        [bytes.fromhex("c10df248050000 00ffffcac9c90700".replace(" ", ""))],  # §7.2.3.5
    ],
)
def test_rfc7692_examples_decompress(frames: list[bytes]) -> None:
    conn = client_receiving()
    for frame in frames:
        conn.receive_data(frame)
    assert conn.next_event() == TextMessage("Hello")
    # Context goes on after a message, even one that ended with BFINAL.
    conn.receive_data(bytes.fromhex("c107f248cdc9c90700"))
    assert conn.next_event() == TextMessage("Hello")


def test_rfc7692_sharing_the_window() -> None:
    # §7.2.3.2: the second "Hello" refers back to the first.
    conn = client_receiving()
    conn.receive_data(bytes.fromhex("c107f248cdc9c90700") + bytes.fromhex("c105f200110000"))
    assert [conn.next_event(), conn.next_event()] == [TextMessage("Hello")] * 2


def test_rfc7692_compressor_output() -> None:
    server = Connection(Role.SERVER, deflate=DeflateParams())
    assert server.send_text("Hello") == bytes.fromhex("c107f248cdc9c90700")
    assert server.send_text("Hello") == bytes.fromhex("c105f200110000")
    assert server.send_bytes(b"") == bytes.fromhex("c20100")  # §7.2.3.6
    no_takeover = Connection(Role.SERVER, deflate=DeflateParams(server_no_context_takeover=True))
    assert no_takeover.send_text("Hello") == no_takeover.send_text("Hello")


def test_compressed_fragments_flag_only_the_first() -> None:
    server = Connection(Role.SERVER, deflate=DeflateParams())
    first = server.send_text("Hel", fin=False)
    last = server.send_text("lo")
    assert first[0] == 0x41 and last[0] == 0x80
    client = client_receiving()
    client.receive_data(first + last)
    assert client.next_event() == TextMessage("Hello")


def test_uncompressed_messages_still_pass_when_deflate_is_on() -> None:
    conn = client_receiving()
    conn.receive_data(b"\x81\x02hi\x82\x01!")
    assert [conn.next_event(), conn.next_event()] == [TextMessage("hi"), BytesMessage(b"!")]


# --- bounded inflation ------------------------------------------------------------------------


def bomb(size: int) -> bytes:
    """``size`` zero bytes deflated, made 1 MiB at a time so the test never holds them all."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    out = [c.compress(zeros) for _ in range(size >> 20)]
    return (b"".join(out) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_a_compression_bomb_stops_at_the_limit() -> None:
    payload = bomb(1 << 30)  # 1 GiB of zeros in about 1 MiB
    assert len(payload) < 1100 * 1024
    conn = Connection(
        Role.SERVER, deflate=DeflateParams(), limits=Limits(max_message_bytes=1 << 20)
    )
    conn.receive_data(serialize_frame(Opcode.BINARY, payload, rsv=4, mask=b"abcd"))
    with pytest.raises(RemoteWebSocketError, match="inflates past") as info:
        conn.next_event()
    assert info.value.close_code == 1009
    close = conn.data_to_send()
    assert close[0] == 0x88 and close[2:4] == b"\x03\xf1"  # 1009, unmasked from a server
    assert conn.state is ConnectionState.CLOSED


def test_bomb_in_fragments_counts_the_whole_message() -> None:
    limit = 100_000
    conn = Connection(Role.CLIENT, deflate=DeflateParams(), limits=Limits(max_message_bytes=limit))
    deflate = Deflate(DeflateParams(), client=False)
    first = deflate.compress(bytes(60_000), fin=False)
    conn.receive_data(serialize_frame(Opcode.BINARY, first, fin=False, rsv=4))
    assert conn.next_event() is None  # 60 000 bytes so far: within the limit
    last = deflate.compress(bytes(60_000), fin=True)
    conn.receive_data(serialize_frame(Opcode.CONTINUATION, last))
    with pytest.raises(RemoteWebSocketError) as info:
        conn.next_event()
    assert info.value.close_code == 1009


def test_message_exactly_at_the_limit_passes() -> None:
    conn = Connection(Role.CLIENT, deflate=DeflateParams(), limits=Limits(max_message_bytes=5000))
    sender = Connection(Role.SERVER, deflate=DeflateParams())
    conn.receive_data(sender.send_bytes(bytes(5000)))
    assert conn.next_event() == BytesMessage(bytes(5000))
    conn.receive_data(sender.send_bytes(bytes(5001)))
    with pytest.raises(RemoteWebSocketError):
        conn.next_event()


def test_corrupt_deflate_data_fails_1002() -> None:
    conn = client_receiving()
    conn.receive_data(b"\xc1\x04\xff\xff\xff\xff")
    with pytest.raises(RemoteWebSocketError, match="invalid compressed") as info:
        conn.next_event()
    assert info.value.close_code == 1002


def test_data_after_bfinal_is_padding_and_ignored() -> None:
    conn = client_receiving()
    block = bytes.fromhex("f348cdc9c90700")
    conn.receive_data(serialize_frame(Opcode.TEXT, block + b"\x00", fin=False, rsv=4))
    for _ in range(3):
        conn.receive_data(serialize_frame(Opcode.CONTINUATION, os.urandom(5000), fin=False))
    conn.receive_data(serialize_frame(Opcode.CONTINUATION, b""))
    assert conn.next_event() == TextMessage("Hello")


def test_random_data_round_trips_with_every_window() -> None:
    for bits in (9, 12, 15):
        params = DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits)
        server, client = Connection(Role.SERVER, deflate=params), client_receiving(params)
        for size in (0, 1, 1000, 70000):
            data = os.urandom(size) + bytes(size)
            client.receive_data(server.send_bytes(data))
            assert client.next_event() == BytesMessage(data)
