"""Unit tests of kakehashi.server.edge.proxy_protocol: the sans-I/O PROXY header parser, v1 and v2.

Headers are encoded here from the specification (haproxy's doc/proxy-protocol.txt), then fed
whole, cut short at every byte, followed by HTTP, corrupted, and as random bytes.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import ConfigError, RemoteProtocolError
from kakehashi.server import ServerConfig
from kakehashi.server.edge.proxy_protocol import (
    V2_SIGNATURE,
    ProxyHeader,
    expect_proxy_header,
    parse_proxy_header,
)

pytestmark = pytest.mark.timeout(60)

HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PEER = ("127.0.0.1", 40000)


def v2(
    command: int = 1,
    family: int = 1,
    transport: int = 1,
    addresses: bytes | None = None,
    tlvs: bytes = b"",
    version: int = 2,
    length: int | None = None,
) -> bytes:
    if addresses is None:
        addresses = inet("198.51.100.7", "203.0.113.1", 51000, 443)
    body = addresses + tlvs
    size = len(body) if length is None else length
    return (
        V2_SIGNATURE
        + bytes([version << 4 | command, family << 4 | transport])
        + (struct.pack("!H", size) + body)
    )


def inet(source: str, destination: str, sport: int, dport: int) -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    return src.packed + dst.packed + struct.pack("!HH", sport, dport)


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


V1_VALID = [
    (b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n",
     ProxyHeader(1, ("198.51.100.7", 51000), ("203.0.113.1", 443))),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 0 65535\r\n",
     ProxyHeader(1, ("2001:db8::7", 0), ("2001:db8::1", 65535))),
    (b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     b"65535 65535\r\n",  # the longest line there is: 104 bytes
     ProxyHeader(1, ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
                 ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, None, None)),
    (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", ProxyHeader(1, None, None)),
]  # fmt: skip

V2_VALID = [
    (v2(), ProxyHeader(2, ("198.51.100.7", 51000), ("203.0.113.1", 443))),
    (v2(family=2, addresses=inet("2001:db8::7", "2001:db8::1", 1, 2)),
     ProxyHeader(2, ("2001:db8::7", 1), ("2001:db8::1", 2))),
    (v2(tlvs=tlv(0x01, b"http/1.1") + tlv(0x02, b"example.com") + tlv(0xEE, b"")),
     ProxyHeader(2, ("198.51.100.7", 51000), ("203.0.113.1", 443))),
    (v2(tlvs=tlv(0x04, b"\x00" * 2000)),  # a long TLV (NOOP) is skipped
     ProxyHeader(2, ("198.51.100.7", 51000), ("203.0.113.1", 443))),
    (v2(command=0, family=0, transport=0, addresses=b""), ProxyHeader(2, None, None)),  # LOCAL
    (v2(command=0, addresses=b"anything at all"), ProxyHeader(2, None, None)),
    (v2(family=0, transport=0, addresses=b"ignored"), ProxyHeader(2, None, None)),  # UNSPEC
    (v2(family=3, addresses=b"/src".ljust(108, b"\0") + b"/dst".ljust(108, b"\0")),
     ProxyHeader(2, None, None)),  # a Unix socket: the connection's own address stands
]  # fmt: skip

VALID = V1_VALID + V2_VALID


@pytest.mark.parametrize(("data", "header"), VALID)
def test_valid_header_and_what_follows(data: bytes, header: ProxyHeader) -> None:
    assert parse_proxy_header(data) == (header, len(data))
    assert parse_proxy_header(data + HTTP, f"v{header.version}") == (header, len(data))


@pytest.mark.parametrize(("data", "header"), VALID)
def test_every_truncation_waits_for_more(data: bytes, header: ProxyHeader) -> None:
    for end in range(len(data)):
        assert parse_proxy_header(data[:end]) is None, end


@pytest.mark.parametrize(
    "data",
    [
        b"proxy TCP4 198.51.100.7 203.0.113.1 51000 443\r\n",
        b"PROXY  TCP4 198.51.100.7 203.0.113.1 51000 443\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443 \r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 51000\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 65536 443\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 051000 443\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.1 -1 443\r\n",
        b"PROXY TCP4 2001:db8::7 203.0.113.1 1 2\r\n",
        b"PROXY TCP6 198.51.100.7 2001:db8::1 1 2\r\n",
        b"PROXY TCP4 198.051.100.7 203.0.113.1 1 2\r\n",
        b"PROXY TCP4 198.51.100 203.0.113.1 1 2\r\n",
        b"PROXY TCP4 256.51.100.7 203.0.113.1 1 2\r\n",
        b"PROXY TCP6 2001:db8:::7 2001:db8::1 1 2\r\n",
        b"PROXY UDP4 198.51.100.7 203.0.113.1 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY\r\n",
        b"PROXY TCP4 " + b"1" * 100,  # no CRLF within 107 bytes
        b"PROXX TCP4",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00",
    ],
)
def test_malformed_v1_is_refused(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="PROXY protocol"):
        parse_proxy_header(data, "v1")
    with pytest.raises(RemoteProtocolError):
        parse_proxy_header(data, "auto")


@pytest.mark.parametrize(
    "data",
    [
        V2_SIGNATURE[:11] + b"X" + bytes(4),  # signature
        v2(version=1),
        v2(version=3),
        v2(command=2),
        v2(command=0xF),
        v2(family=4),
        v2(transport=2),  # DGRAM on a stream connection
        v2(transport=3),
        v2(transport=0),
        v2(length=11),  # shorter than the IPv4 addresses
        v2(family=2),  # IPv6 family, IPv4-sized addresses
        v2(family=3),  # Unix family, IPv4-sized addresses
        v2(tlvs=b"\x01\x00"),  # a TLV cut short
        v2(tlvs=b"\x01\x00\x04abc"),  # one byte over
        v2(tlvs=b"\x01\x00\x05abc"),  # a TLV longer than the header
    ],
)
def test_malformed_v2_is_refused(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="PROXY protocol"):
        parse_proxy_header(data + HTTP, "v2")


def test_modes_accept_only_their_version() -> None:
    one, two = V1_VALID[0][0], V2_VALID[0][0]
    with pytest.raises(RemoteProtocolError, match="no v1 header"):
        parse_proxy_header(two, "v1")
    with pytest.raises(RemoteProtocolError, match="no v2 header"):
        parse_proxy_header(one, "v2")
    assert parse_proxy_header(one, "auto") is not None
    assert parse_proxy_header(two, "auto") is not None
    assert parse_proxy_header(b"") is None


# -- fuzzing --------------------------------------------------------------------------------


def _outcome(data: bytes, mode: str) -> tuple[ProxyHeader, int] | str | None:
    try:
        return parse_proxy_header(data, mode)
    except RemoteProtocolError as exc:
        assert exc.status_hint == 400
        return "refused"


@given(st.binary(max_size=300), st.sampled_from(["v1", "v2", "auto"]))
@settings(max_examples=1000, deadline=None)
def test_random_bytes_never_break_the_parser(data: bytes, mode: str) -> None:
    out = _outcome(data, mode)
    if isinstance(out, tuple):
        assert 0 < out[1] <= len(data)


@given(st.sampled_from(VALID), st.binary(max_size=64))
@settings(max_examples=300, deadline=None)
def test_anything_after_a_header_is_left_alone(
    valid: tuple[bytes, ProxyHeader], tail: bytes
) -> None:
    data, header = valid
    assert parse_proxy_header(data + tail) == (header, len(data))


@given(st.sampled_from(VALID), st.data())
@settings(max_examples=1000, deadline=None)
def test_corrupted_headers_never_break_the_parser(
    valid: tuple[bytes, ProxyHeader], draw: st.DataObject
) -> None:
    data = bytearray(valid[0])
    for _ in range(draw.draw(st.integers(1, 3))):
        data[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    out = _outcome(bytes(data) + HTTP, "auto")
    if isinstance(out, tuple):
        assert out[1] <= len(data) + len(HTTP)


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@given(st.one_of(st.tuples(st.just(4), ipv4, ipv4), st.tuples(st.just(6), ipv6, ipv6)), ports,
       ports, st.booleans())  # fmt: skip
@settings(max_examples=500, deadline=None)
def test_any_addresses_round_trip(
    addresses: tuple[int, str, str], sport: int, dport: int, binary: bool
) -> None:
    family, source, destination = addresses
    if binary:
        data = v2(family=1 if family == 4 else 2,
                  addresses=inet(source, destination, sport, dport))  # fmt: skip
    else:
        data = b"PROXY TCP%d %s %s %d %d\r\n" % (family, source.encode(), destination.encode(),
                                                sport, dport)  # fmt: skip
        assert len(data) <= 107
    header, end = parse_proxy_header(data + HTTP) or (None, 0)
    assert header == ProxyHeader(2 if binary else 1, (source, sport), (destination, dport))
    assert end == len(data)


# -- policy ---------------------------------------------------------------------------------


def test_allowed_peer_must_send_a_header() -> None:
    assert expect_proxy_header(V1_VALID[0][0] + HTTP, PEER, "v1", "127.0.0.1") == (
        ("198.51.100.7", 51000),
        len(V1_VALID[0][0]),
    )
    assert expect_proxy_header(v2(command=0) + HTTP, PEER, "auto", "127.0.0.1") == (PEER, 16 + 12)
    assert expect_proxy_header(b"PROXY TCP4 198.51", PEER, "auto", "127.0.0.0/8") is None
    with pytest.raises(RemoteProtocolError, match="no header"):
        expect_proxy_header(HTTP, PEER, "auto", "127.0.0.1")


def test_peer_not_allowed_is_served_as_is_unless_it_sends_a_header() -> None:
    assert expect_proxy_header(HTTP, PEER, "v1", "10.0.0.0/8") == (PEER, 0)
    assert expect_proxy_header(b"P", PEER, "v1", "10.0.0.0/8") is None  # PROXY or POST?
    assert expect_proxy_header(b"\r\n\r\n", PEER, "v1", "10.0.0.0/8") is None
    assert expect_proxy_header(b"POST / HTTP/1.1\r\n", PEER, "v1", "10.0.0.0/8") == (PEER, 0)
    for header in (V1_VALID[0][0], V2_VALID[0][0]):
        with pytest.raises(RemoteProtocolError, match="not in --proxy-allow-from"):
            expect_proxy_header(header + HTTP, PEER, "auto", "10.0.0.0/8")


def test_unix_peer_allowed_by_unix() -> None:
    unix = ("", 0)
    assert expect_proxy_header(V1_VALID[0][0], unix, "v1", "unix") == (
        ("198.51.100.7", 51000),
        len(V1_VALID[0][0]),
    )
    with pytest.raises(RemoteProtocolError):
        expect_proxy_header(V1_VALID[0][0], unix, "v1", "127.0.0.1")


@pytest.mark.parametrize(
    "changes",
    [{"proxy_protocol": "on"}, {"proxy_protocol": "V1"}, {"proxy_allow_from": "10.0.0.1/8"}],
)
def test_bad_settings(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        ServerConfig(**changes)  # type: ignore[arg-type]
