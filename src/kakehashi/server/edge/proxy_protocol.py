"""The PROXY protocol (HAProxy's, versions 1 and 2): the client's address, sent by a proxy
as the first bytes of a connection, before any HTTP.

Sans-I/O: :func:`parse_proxy_header` looks at the bytes received so far and answers "not yet",
"here is the header and where it ends", or raises.  :func:`expect_proxy_header` adds the policy
of ``--proxy-protocol`` and ``--proxy-allow-from``; the channel calls it on a new connection
until it answers, within the header timeout.

Rules (from the protocol's specification, haproxy's doc/proxy-protocol.txt):

- v1 is one text line of at most 107 bytes: ``PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n`` with
  single spaces, addresses of the family named, ports 0-65535 without leading zeros; or
  ``PROXY UNKNOWN`` and anything up to the CRLF, for which the connection's own address is
  kept.
- v2 is a 16-byte binary head (a 12-byte signature, version 2, a command, a family, the
  length of the rest), the addresses, then TLVs.  The LOCAL command (the proxy's own health
  checks), the UNSPEC family and Unix-socket addresses keep the connection's own address.
  TLVs are walked only to check they fit the length given; their contents are not used.
- An allowed peer must send a header; a peer not allowed that sends one is refused.  Either
  failure closes the connection without a response: a peer that gets this wrong is not
  speaking HTTP to us.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from kakehashi.errors import RemoteProtocolError
from kakehashi.server.edge.proxies import TrustedPeers

__all__ = [
    "MODES",
    "V2_SIGNATURE",
    "ProxyHeader",
    "allow_list",
    "expect_proxy_header",
    "parse_proxy_header",
]

MODES = ("off", "v1", "v2", "auto")
V1_MAX_BYTES = 107  # "PROXY TCP6 " + two longest IPv6 addresses + two ports + CRLF
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
_PORT = rb"(0|[1-9][0-9]{0,4})"
_V1_RE = re.compile(
    rb"PROXY (?:UNKNOWN(?: [^\r\n]*)?|(TCP[46]) ([0-9A-Fa-f.:]+) ([0-9A-Fa-f.:]+) "
    + _PORT
    + b" "
    + _PORT
    + rb")\r\n"
)
# v2 address blocks by family (high nibble of byte 13): source, destination, two ports.
_INET, _INET6, _UNIX = 1, 2, 3
_ADDRESS_BYTES = {0: 0, _INET: 12, _INET6: 36, _UNIX: 216}
_STREAM = 1
_LOCAL, _PROXY = 0, 1

Peer = tuple[str, int]


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header.  ``source``/``destination`` are None when the connection's own
    addresses stand (v1 UNKNOWN; v2 LOCAL, UNSPEC or Unix)."""

    version: int
    source: Peer | None
    destination: Peer | None


def refuse(reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"PROXY protocol: {reason}", 400)


def parse_proxy_header(data: bytes, mode: str = "auto") -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length, or None while it is incomplete.

    Args:
        mode: "v1", "v2" or "auto" (either).

    Raises:
        RemoteProtocolError: the bytes are not a header of an accepted version.
    """
    if not data:
        return None
    if data[0] == V2_SIGNATURE[0] and mode != "v1":
        return _parse_v2(data)
    if data[0] == _V1_PREFIX[0] and mode != "v2":
        return _parse_v1(data)
    raise refuse(f"no {'header' if mode == 'auto' else mode + ' header'} in {data[:16]!r}")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\n", 0, V1_MAX_BYTES)
    if end < 0:
        if not data.startswith(_V1_PREFIX[: len(data)]):
            raise refuse(f"not a v1 header: {data[:16]!r}")
        if len(data) >= V1_MAX_BYTES:
            raise refuse(f"v1 line longer than {V1_MAX_BYTES} bytes")
        return None
    m = _V1_RE.fullmatch(data, 0, end + 1)
    if m is None:
        raise refuse(f"malformed v1 line {data[: end + 1]!r}")
    if m[1] is None:
        return ProxyHeader(1, None, None), end + 1
    kind = ipaddress.IPv4Address if m[1] == b"TCP4" else ipaddress.IPv6Address
    try:
        source, destination = kind(m[2].decode("ascii")), kind(m[3].decode("ascii"))
    except ValueError as exc:
        raise refuse(f"bad {m[1].decode()} address: {exc}") from None
    ports = int(m[4]), int(m[5])
    if max(ports) > 65535:
        raise refuse(f"port out of range in {data[: end + 1]!r}")
    return ProxyHeader(1, (str(source), ports[0]), (str(destination), ports[1])), end + 1


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    head = data[:16]
    if not V2_SIGNATURE.startswith(head[:12]):
        raise refuse(f"not a v2 signature: {head!r}")
    if len(head) < 16:
        return None
    version, command = head[12] >> 4, head[12] & 0xF
    family, transport = head[13] >> 4, head[13] & 0xF
    end = 16 + int.from_bytes(head[14:16], "big")
    if version != 2 or command not in (_LOCAL, _PROXY):
        raise refuse(f"v2 version/command byte {head[12]:#04x}")
    if family not in _ADDRESS_BYTES or transport > 2:
        raise refuse(f"v2 family/transport byte {head[13]:#04x}")
    if len(data) < end:
        return None
    if command == _LOCAL or family == 0:
        return ProxyHeader(2, None, None), end  # the rest is not to be interpreted
    size = _ADDRESS_BYTES[family]
    if end - 16 < size:
        raise refuse(f"v2 length {end - 16} too short for its addresses ({size})")
    if family != _UNIX and transport != _STREAM:
        raise refuse("v2 header for a datagram transport on a stream connection")
    _check_tlvs(data, 16 + size, end)
    if family == _UNIX:
        return ProxyHeader(2, None, None), end
    return ProxyHeader(2, *_v2_addresses(data[16 : 16 + size], family == _INET6)), end


def _v2_addresses(block: bytes, v6: bool) -> tuple[Peer, Peer]:
    width = 16 if v6 else 4
    kind = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    source, destination = kind(block[:width]), kind(block[width : 2 * width])
    ports = block[2 * width :]
    return (str(source), int.from_bytes(ports[:2], "big")), (
        str(destination),
        int.from_bytes(ports[2:4], "big"),
    )


def _check_tlvs(data: bytes, pos: int, end: int) -> None:
    """Walk the TLVs between ``pos`` and ``end``: each must fit, none is interpreted."""
    while pos < end:
        if end - pos < 3:
            raise refuse("v2 TLV cut short")
        pos += 3 + int.from_bytes(data[pos + 1 : pos + 3], "big")
        if pos > end:
            raise refuse("v2 TLV longer than the header")


# -- policy ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def allow_list(spec: str) -> TrustedPeers:
    """The TrustedPeers of a ``--proxy-allow-from`` value, parsed once per server setting."""
    return TrustedPeers(spec)


def _could_be_header(data: bytes) -> bool | None:
    """Whether ``data`` starts like a PROXY header: None while too short to tell."""
    for prefix in (_V1_PREFIX, V2_SIGNATURE):
        if data[: len(prefix)] == prefix:
            return True
        if prefix.startswith(data):
            return None
    return False


def expect_proxy_header(data: bytes, peer: Peer, mode: str, allow: str) -> tuple[Peer, int] | None:
    """The client's address and where the HTTP bytes start, or None to wait for more.

    An allowed peer (``allow``: the ``--proxy-allow-from`` list) must start with a header of
    ``mode``; any other peer is served as it is, unless it sends a header.

    Raises:
        RemoteProtocolError: no header, a malformed one, or one from a peer not allowed.
    """
    if not allow_list(allow).trusts(peer[0]):
        looks = _could_be_header(data)
        if looks is None:
            return None
        if looks:
            raise refuse(f"header from {peer[0] or 'a Unix socket'}, not in --proxy-allow-from")
        return peer, 0
    parsed = parse_proxy_header(data, mode)
    if parsed is None:
        return None
    header, end = parsed
    return header.source or peer, end
