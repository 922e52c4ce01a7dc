"""The WebSocket state machine, without a loop: messages, fragments, control frames, the close
handshake, failures with the right close code, limits, and byte-at-a-time feeding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import LocalWebSocketError, RemoteWebSocketError
from kakehashi.websocket import (
    BytesMessage,
    CloseReceived,
    Connection,
    ConnectionLost,
    ConnectionState,
    Event,
    FrameHeader,
    Limits,
    Opcode,
    Ping,
    Pong,
    Role,
    TextMessage,
    parse_close_payload,
    parse_frame_header,
    serialize_frame,
)

KEY = b"\x01\x02\x03\x04"
State = ConnectionState


def masked(opcode: Opcode, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A frame as a client sends it."""
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv, mask=KEY)


DEFAULT = Limits()


def server_fed(*frames: bytes, limits: Limits = DEFAULT) -> Connection:
    conn = Connection(Role.SERVER, limits=limits)
    conn.receive_data(b"".join(frames))
    return conn


def drain(conn: Connection) -> list[Event]:
    return list(conn.events())


def close_code_of(wire: bytes) -> int:
    head = parse_frame_header(wire)
    assert head is not None and head.opcode == Opcode.CLOSE
    payload = wire[head.size : head.size + head.length]
    if head.mask:
        payload = bytes(b ^ head.mask[i % 4] for i, b in enumerate(payload))
    return parse_close_payload(payload)[0]


def fails_with(conn: Connection, code: int, match: str | None = None) -> None:
    with pytest.raises(RemoteWebSocketError, match=match) as info:
        drain(conn)
    assert info.value.close_code == code
    assert conn.state is State.CLOSED
    assert close_code_of(conn.data_to_send()) == code
    assert conn.next_event() is None  # nothing more after a failure
    assert conn.close_sent is not None and conn.close_sent[0] == code


# --- messages ---------------------------------------------------------------------------------


def test_messages_both_ways() -> None:
    client = Connection(Role.CLIENT, mask_key=lambda: KEY)
    server = Connection(Role.SERVER)
    wire = client.send_text("héllo") + client.send_bytes(b"\x00\xff")
    assert wire[:2] == b"\x81\x86" and wire[2:6] == KEY
    server.receive_data(wire)
    assert drain(server) == [TextMessage("héllo"), BytesMessage(b"\x00\xff")]
    client.receive_data(server.send_text("ok") + server.send_bytes(b""))
    assert drain(client) == [TextMessage("ok"), BytesMessage(b"")]


def test_fragments_are_reassembled_with_control_frames_between() -> None:
    conn = server_fed(
        masked(Opcode.TEXT, "hé".encode()[:2], fin=False),
        masked(Opcode.PING, b"p"),
        masked(Opcode.CONTINUATION, "hé".encode()[2:], fin=False),
        masked(Opcode.CONTINUATION, b"!"),
        masked(Opcode.BINARY, b"a", fin=False),
        masked(Opcode.CONTINUATION, b""),
    )
    assert drain(conn) == [Ping(b"p"), TextMessage("hé!"), BytesMessage(b"a")]
    assert conn.data_to_send() == b"\x8a\x01p"


def test_sending_fragments() -> None:
    server = Connection(Role.SERVER)
    wire = server.send_bytes(b"ab", fin=False) + server.send_bytes(b"c", fin=False)
    with pytest.raises(LocalWebSocketError, match="fragments"):
        server.send_text("x")
    wire += server.send_ping() + server.send_bytes(b"d")
    assert wire == b"\x02\x02ab\x00\x01c\x89\x00\x80\x01d"
    client = Connection(Role.CLIENT)
    client.receive_data(wire)
    assert drain(client) == [Ping(b""), BytesMessage(b"abcd")]


@pytest.mark.parametrize(
    "frames, match",
    [
        ([masked(Opcode.CONTINUATION, b"x")], "without a message"),
        ([masked(Opcode.TEXT, b"a", fin=False), masked(Opcode.TEXT, b"b")], "previous one"),
        ([masked(Opcode.TEXT, b"a", fin=False), masked(Opcode.BINARY, b"b")], "previous one"),
        ([b"\x83\x80" + KEY], "reserved opcode"),
        ([masked(Opcode.TEXT, b"a", rsv=4)], "no extension"),
        ([masked(Opcode.PING, b"a", fin=False)], "fragmented"),
        ([b"\x81\x01a"], "unmasked frame from a client"),
        ([masked(Opcode.CLOSE, b"\x03")], "one-byte"),
        ([masked(Opcode.CLOSE, b"\x03\xed")], "1005"),
    ],
)
def test_protocol_errors_close_with_1002(frames: list[bytes], match: str) -> None:
    fails_with(server_fed(*frames), 1002, match)


def test_client_refuses_masked_frames() -> None:
    conn = Connection(Role.CLIENT, mask_key=lambda: KEY)
    conn.receive_data(masked(Opcode.TEXT, b"a"))
    fails_with(conn, 1002, "masked frame")


def test_rsv1_on_a_continuation_is_refused_even_with_deflate() -> None:
    from kakehashi.websocket import Deflate, DeflateParams

    deflate = Deflate(DeflateParams(), client=True)
    conn = Connection(Role.SERVER, deflate=DeflateParams())
    conn.receive_data(masked(Opcode.TEXT, deflate.compress(b"a", fin=False), fin=False, rsv=4))
    conn.receive_data(masked(Opcode.CONTINUATION, deflate.compress(b"b"), rsv=4))
    fails_with(conn, 1002, "continuation")


# --- UTF-8 ------------------------------------------------------------------------------------


def test_invalid_utf8_fails_at_the_first_bad_fragment() -> None:
    conn = server_fed(masked(Opcode.TEXT, "κόσμε".encode(), fin=False))
    assert drain(conn) == []
    conn.receive_data(masked(Opcode.CONTINUATION, b"\xce\xba\xed\xa0\x80", fin=False))
    fails_with(conn, 1007, "UTF-8")  # the message's end never came


def test_invalid_utf8_fails_within_a_frame_still_arriving() -> None:
    frame = masked(Opcode.TEXT, b"ok\xff" + b"x" * 1000)
    conn = server_fed(frame[:20])  # header and a few payload bytes: the bad one among them
    fails_with(conn, 1007)


def test_sequences_split_across_fragments_are_fine() -> None:
    data = "€😀".encode()
    conn = server_fed(*(masked(Opcode.CONTINUATION if i else Opcode.TEXT, data[i : i + 1],
                               fin=i == len(data) - 1) for i in range(len(data))))  # fmt: skip
    assert drain(conn) == [TextMessage("€😀")]


@pytest.mark.parametrize("fragmented", [False, True])
def test_a_sequence_cut_off_at_the_end_fails(fragmented: bool) -> None:
    frames = (
        [masked(Opcode.TEXT, b"a", fin=False), masked(Opcode.CONTINUATION, b"\xe2\x82")]
        if fragmented
        else [masked(Opcode.TEXT, b"a\xe2\x82")]
    )
    fails_with(server_fed(*frames), 1007)


# --- limits -----------------------------------------------------------------------------------


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    conn = server_fed(b"\x82\xff" + (1001).to_bytes(8, "big") + KEY, limits=Limits(1000))
    fails_with(conn, 1009, "limit")
    assert conn.buffered == 0


def test_a_2_63_frame_is_refused_at_once() -> None:
    fails_with(server_fed(b"\x82\xff\xff" + b"\xff" * 7 + KEY), 1002, "most significant")
    conn = server_fed(b"\x82\xff\x7f" + b"\xff" * 7 + KEY)
    fails_with(conn, 1009)


@pytest.mark.parametrize("opcode", [Opcode.BINARY, Opcode.TEXT])
def test_fragments_count_towards_the_limit(opcode: Opcode) -> None:
    limits = Limits(max_message_bytes=10)
    conn = server_fed(masked(opcode, b"x" * 6, fin=False), limits=limits)
    assert drain(conn) == []
    conn.receive_data(masked(Opcode.CONTINUATION, b"x" * 4, fin=False))
    assert drain(conn) == []
    conn.receive_data(masked(Opcode.CONTINUATION, b"x"))
    fails_with(conn, 1009)


def test_pongs_owed_are_bounded() -> None:
    conn = server_fed(*(masked(Opcode.PING, b"%d" % i) for i in range(10_000)),
                      limits=Limits(max_pending_pongs=4))  # fmt: skip
    assert len(drain(conn)) == 10_000
    out = conn.data_to_send()
    assert out == b"".join(serialize_frame(Opcode.PONG, b"%d" % i) for i in range(9996, 10_000))
    assert conn.data_to_send() == b""


def test_bytes_wait_in_the_buffer_until_events_are_asked_for() -> None:
    conn = server_fed(*(masked(Opcode.BINARY, b"m") for _ in range(100)))
    assert conn.buffered == 700
    assert conn.next_event() == BytesMessage(b"m")
    assert conn.buffered == 693


# --- the close handshake ----------------------------------------------------------------------


def test_peer_closes_and_we_echo_its_code() -> None:
    conn = server_fed(masked(Opcode.CLOSE, b"\x0f\xa0bye"), masked(Opcode.TEXT, b"late"))
    assert drain(conn) == [CloseReceived(4000, "bye")]  # the frame after the close is ignored
    assert conn.data_to_send() == b"\x88\x02\x0f\xa0"
    assert conn.state is State.CLOSED
    assert conn.close_received == (4000, "bye") and conn.close_sent == (4000, "")
    with pytest.raises(LocalWebSocketError, match="closed"):
        conn.send_text("x")
    conn.receive_data(b"more")
    conn.receive_data(b"")
    assert conn.next_event() is None  # no ConnectionLost: the handshake was clean


def test_close_without_a_code_is_1005_and_echoed_empty() -> None:
    conn = server_fed(masked(Opcode.CLOSE, b""))
    assert drain(conn) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"


def test_bad_close_reason_fails_1007() -> None:
    fails_with(server_fed(masked(Opcode.CLOSE, b"\x03\xe8\xff")), 1007)


def test_we_close_first() -> None:
    conn = server_fed(masked(Opcode.PING, b"1"))
    assert drain(conn) == [Ping(b"1")]
    out = conn.send_close(1001, "going")
    assert out == b"\x8a\x011" + b"\x88\x07\x03\xe9going"  # the owed pong goes first
    assert conn.state is State.CLOSING
    with pytest.raises(LocalWebSocketError):
        conn.send_close()
    with pytest.raises(LocalWebSocketError):
        conn.send_ping()
    conn.receive_data(masked(Opcode.TEXT, b"in flight") + masked(Opcode.PING, b"2"))
    conn.receive_data(masked(Opcode.CLOSE, b"\x03\xe9"))
    assert drain(conn) == [TextMessage("in flight"), Ping(b"2"), CloseReceived(1001, "")]
    assert conn.data_to_send() == b""  # no pong after our close, no second close
    assert conn.state is State.CLOSED


def test_send_close_without_code() -> None:
    conn = Connection(Role.SERVER)
    assert conn.send_close(None) == b"\x88\x00"
    assert conn.close_sent == (1005, "")


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 2000, 5000])
def test_send_close_refuses_codes_not_for_the_wire(code: int) -> None:
    conn = Connection(Role.SERVER)
    with pytest.raises(LocalWebSocketError):
        conn.send_close(code)
    assert conn.state is State.OPEN


def test_control_payload_limit_on_send() -> None:
    conn = Connection(Role.SERVER)
    assert conn.send_pong(b"x" * 125)[:2] == b"\x8a\x7d"
    with pytest.raises(LocalWebSocketError, match="at most 125"):
        conn.send_ping(b"x" * 126)


def test_end_of_stream_without_close_is_connection_lost() -> None:
    conn = server_fed(masked(Opcode.TEXT, b"hello")[:5])
    assert drain(conn) == []
    conn.receive_data(b"")
    assert drain(conn) == [ConnectionLost()]
    assert conn.state is State.CLOSED and conn.next_event() is None
    with pytest.raises(LocalWebSocketError, match="after the end"):
        conn.receive_data(b"x")


def test_end_of_stream_after_our_close_is_still_a_loss() -> None:
    conn = Connection(Role.SERVER)
    conn.send_close()
    conn.receive_data(b"")
    assert drain(conn) == [ConnectionLost()]


def test_pong_event_and_frame_hook() -> None:
    seen: list[tuple[FrameHeader, bool]] = []
    conn = Connection(Role.CLIENT, mask_key=lambda: KEY, on_frame=lambda h, s: seen.append((h, s)))
    conn.receive_data(serialize_frame(Opcode.PONG, b"hb") + b"\x82\x7e\x01\x00" + bytes(256))
    assert drain(conn) == [Pong(b"hb"), BytesMessage(bytes(256))]
    conn.send_text("x" * 70000)
    assert [(h.opcode, h.length, h.mask, h.size, sent) for h, sent in seen] == [
        (Opcode.PONG, 2, None, 2, False),
        (Opcode.BINARY, 256, None, 4, False),
        (Opcode.TEXT, 70000, KEY, 14, True),
    ]


# --- any split of the bytes gives the same events ---------------------------------------------

messages = st.lists(
    st.one_of(
        st.text(max_size=300).map(lambda t: ("text", t)),
        st.binary(max_size=300).map(lambda b: ("bytes", b)),
        st.binary(max_size=125).map(lambda b: ("ping", b)),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(messages, st.integers(1, 200), st.integers(1, 50), st.booleans())
def test_any_split_gives_the_same_events(
    items: list[tuple[str, object]], fragment: int, chunk: int, compress: bool
) -> None:
    from kakehashi.websocket import DeflateParams

    params = DeflateParams() if compress else None
    client = Connection(Role.CLIENT, deflate=params)
    server = Connection(Role.SERVER, deflate=params)
    wire = b""
    expected: list[Event] = []
    for kind, value in items:
        if kind == "ping":
            assert isinstance(value, bytes)
            wire += client.send_ping(value)
            expected.append(Ping(value))
        elif kind == "text":
            assert isinstance(value, str)
            pieces = [value[i : i + fragment] for i in range(0, len(value), fragment)] or [""]
            for i, piece in enumerate(pieces):
                wire += client.send_text(piece, fin=i == len(pieces) - 1)
            expected.append(TextMessage(value))
        else:
            assert isinstance(value, bytes)
            wire += client.send_bytes(value)
            expected.append(BytesMessage(value))
    wire += client.send_close(1000, "done")
    expected.append(CloseReceived(1000, "done"))
    got: list[Event] = []
    for i in range(0, len(wire), chunk):
        server.receive_data(wire[i : i + chunk])
        got.extend(server.events())
    assert got == expected
    client.receive_data(server.data_to_send())
    pongs = [Pong(v) for k, v in items if k == "ping" and isinstance(v, bytes)][-16:]
    assert drain(client) == [*pongs, CloseReceived(1000, "")]
    assert client.state is State.CLOSED and server.state is State.CLOSED


# --- the fast path --------------------------------------------------------------------------


def _outcome(role: Role, wire: bytes, deflate: bool, hooked: bool) -> tuple[object, ...]:
    """The events (or the failure's close code), and the bytes owed, after ``wire``."""
    from kakehashi.websocket import DeflateParams

    seen: list[FrameHeader] = []
    conn = Connection(
        role,
        limits=Limits(max_message_bytes=40),  # met often by the payloads drawn
        deflate=DeflateParams() if deflate else None,
        mask_key=lambda: KEY,  # the client's Close frame, the same both times
        on_frame=(lambda head, sent: seen.append(head)) if hooked else None,
    )
    conn.receive_data(wire)
    events: list[object] = []
    try:
        events.extend(conn.events())
    except RemoteWebSocketError as exc:
        events.append(("failed", exc.close_code))
    return tuple(events), conn.data_to_send(), conn.state, conn.buffered


_first_bytes = st.sampled_from([0x81, 0x82, 0xC1, 0xC2, 0x01, 0x80, 0x91, 0xA2, 0x83, 0x89])


@st.composite
def _frame(draw: st.DrawFn) -> bytes:
    """A frame header and payload, valid or not: any first byte of interest, either MASK
    bit, every length encoding (16-bit ones below 126 too), payloads that are not UTF-8."""
    payload = draw(st.binary(max_size=300) | st.text(max_size=80).map(str.encode))
    b0 = draw(_first_bytes)
    masked_ = draw(st.booleans())
    n = len(payload)
    encoding = draw(st.sampled_from(["short", "16", "64"])) if n < 126 else "16"
    if encoding == "short":
        head = bytes([b0, (0x80 if masked_ else 0) | n])
    elif encoding == "16":
        head = bytes([b0, (0x80 if masked_ else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if masked_ else 0) | 127]) + n.to_bytes(8, "big")
    if masked_:
        key = draw(st.binary(min_size=4, max_size=4))
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


@settings(max_examples=300, deadline=None)
@given(st.lists(_frame(), max_size=4), st.sampled_from(list(Role)), st.booleans(), st.data())
def test_the_fast_path_and_the_general_one_agree(
    frames: list[bytes], role: Role, deflate: bool, data: st.DataObject
) -> None:
    wire = b"".join(frames)
    cut = data.draw(st.integers(0, len(wire)))  # and a frame cut short, at the end
    wire = wire[:cut] if data.draw(st.booleans()) else wire
    # A frame hook sends every frame the general way (the fast path skips it).
    assert _outcome(role, wire, deflate, hooked=False) == _outcome(role, wire, deflate, True)


# Around 2,048 bytes a masked payload is unmasked straight from the buffer instead of a
# slice of it; past 65,535 its length takes 64 bits; a text piece may end inside a character.
@pytest.mark.parametrize("size", [2047, 2048, 65535, 65536, 70001])
@pytest.mark.parametrize("fragmented", [False, True])
def test_a_big_message_is_the_same_however_it_arrives(size: int, fragmented: bool) -> None:
    text = ("aé€😀" * size)[:size]
    data = text.encode()
    if fragmented:
        third = len(data) // 3
        wire = (masked(Opcode.TEXT, data[:third], fin=False)
                + masked(Opcode.CONTINUATION, data[third : 2 * third], fin=False)
                + masked(Opcode.CONTINUATION, data[2 * third :]))  # fmt: skip
    else:
        wire = masked(Opcode.TEXT, data)
    wire += masked(Opcode.BINARY, data) + masked(Opcode.BINARY, b"x")  # what follows is kept
    for cuts in ([], [1], [7, 2049], [len(wire) // 2], list(range(3, len(wire), 4093))):
        conn = Connection(Role.SERVER)
        events: list[Event] = []
        for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            conn.receive_data(wire[start:end])
            events.extend(conn.events())
        assert events == [TextMessage(text), BytesMessage(data), BytesMessage(b"x")], cuts
        assert conn.buffered == 0


def test_the_fast_path_takes_a_16_bit_length_and_leaves_what_follows() -> None:
    text = "あ" * 100  # 300 bytes of UTF-8: a 16-bit length
    wire = masked(Opcode.TEXT, text.encode()) + masked(Opcode.BINARY, b"x")[:3]
    conn = server_fed(wire)
    assert conn.next_event() == TextMessage(text)
    assert conn.next_event() is None and conn.buffered == 3


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_the_servers_send_fast_path_frames_as_the_general_one(size: int) -> None:
    fast = Connection(Role.SERVER)
    hooked: list[FrameHeader] = []
    general = Connection(Role.SERVER, on_frame=lambda head, sent: hooked.append(head))
    text, data = "x" * size, b"\xff" * size
    assert (
        fast.send_text(text)
        == general.send_text(text)
        == serialize_frame(Opcode.TEXT, text.encode())
    )
    assert fast.send_bytes(data) == general.send_bytes(data)
    assert [h.length for h in hooked] == [size, size]
    # Fragments, and a closed connection, still go the general way.
    assert fast.send_text("a", fin=False) == serialize_frame(Opcode.TEXT, b"a", fin=False)
    with pytest.raises(LocalWebSocketError):
        fast.send_bytes(b"b")  # another message while the text is under way
    fast.send_close(1000)
    with pytest.raises(LocalWebSocketError):
        fast.send_text("late")
