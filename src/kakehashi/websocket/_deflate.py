"""permessage-deflate (RFC 7692): negotiation both ways, and the per-connection codec.

No I/O here.  Negotiation works on extension offers already split into ``(name, value)``
parameters by ``_handshake.parse_extensions``.  The codec compresses whole messages (or the
fragments of one) and inflates received ones with a bound: ``decompress(data, max_length)``
never produces more than the bytes the message may still grow by, so a message of a few KiB
that would inflate to 1 GiB is refused (1009) after at most the limit plus one byte.

zlib cannot compress with an 8-bit window (``deflateInit2`` refuses it since zlib 1.2.9), so
an offer or a response that asks this side to compress with 8 bits is declined or refused.
Compression and decompression objects are created on first use and dropped after each message
when context takeover is off, so an idle connection holds no zlib state in that case.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from kakehashi.errors import ConfigError, HandshakeError, RemoteWebSocketError

__all__ = [
    "EXTENSION_NAME",
    "Deflate",
    "DeflateParams",
    "DeflateSettings",
    "client_accept",
    "client_offer",
    "server_negotiate",
]

EXTENSION_NAME = "permessage-deflate"
# RFC 7692 §7.2.1: the sender strips this empty stored block from each message's end; the
# receiver appends it back before inflating.
_TAIL = b"\x00\x00\xff\xff"
_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_BITS = ("server_max_window_bits", "client_max_window_bits")
Params = list[tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """What this side asks for (client) or is willing to accept (server), and zlib's knobs.

    The defaults favour memory, after uvicorn#1862 (4 GB for 5-8k compressed connections):
    a 4 KiB window each way when the peer lets us choose (``max_window_bits=12``) and
    ``mem_level=5`` make a compressing connection cost about 40 KiB rather than 300 KiB.
    ``None`` window bits leave the peer's choice (up to 15).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = 12
    client_max_window_bits: int | None = 12
    compress_level: int = 6
    mem_level: int = 5

    def __post_init__(self) -> None:
        for name in _BITS:
            bits = getattr(self, name)
            if bits is not None and not 9 <= bits <= 15:
                raise ConfigError(f"{name} must be 9 to 15 (zlib cannot compress with 8)")
        if not -1 <= self.compress_level <= 9:
            raise ConfigError("compress_level must be -1 to 9")
        if not 1 <= self.mem_level <= 9:
            raise ConfigError("mem_level must be 1 to 9")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What both sides agreed on, plus this side's zlib settings (not negotiated)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    compress_level: int = 6
    mem_level: int = 5


def _bits_value(name: str, value: str | None, *, optional: bool = False) -> int | None:
    """A window-bits value: 8-15 in plain digits (RFC 7692 §7.1.2), or None where allowed."""
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} needs a value")
    if not (value.isdigit() and value.isascii()) or value[0] == "0" or not 8 <= int(value) <= 15:
        raise ValueError(f"{name}={value!r}: not 8-15")
    return int(value)


def _read_params(params: Params, *, offer: bool) -> dict[str, int | None]:
    """Check one offer's or response's parameters: known, each once, well formed.

    In an offer ``client_max_window_bits`` may come without a value (it says the client
    supports the parameter); the result maps it to None then.

    Raises:
        ValueError: the parameters are unusable (the caller declines or fails).
    """
    found: dict[str, int | None] = {}
    for name, value in params:
        if name in found:
            raise ValueError(f"{name} given twice")
        if name in _FLAGS:
            if value is not None:
                raise ValueError(f"{name} takes no value")
            found[name] = None
        elif name in _BITS:
            optional = offer and name == "client_max_window_bits"
            found[name] = _bits_value(name, value, optional=optional)
        else:
            raise ValueError(f"unknown parameter {name}")
    return found


def _negotiate_one(params: Params, ours: DeflateSettings) -> tuple[DeflateParams, bytes]:
    """Accept one offer (RFC 7692 §7.1), or raise ValueError to decline it."""
    found = _read_params(params, offer=True)
    out = [EXTENSION_NAME.encode()]
    snct = "server_no_context_takeover" in found or ours.server_no_context_takeover
    cnct = "client_no_context_takeover" in found or ours.client_no_context_takeover
    if snct:
        out.append(b"server_no_context_takeover")
    if cnct:
        out.append(b"client_no_context_takeover")
    # Our own window: at most what the client allows, and what we want; always stated when
    # it is not 15, which a server may do unasked (§7.1.2.1).
    server_bits = min(found.get("server_max_window_bits") or 15, ours.server_max_window_bits or 15)
    if server_bits < 9:
        raise ValueError("server_max_window_bits=8 cannot be honoured by zlib")
    if server_bits != 15 or "server_max_window_bits" in found:
        out.append(b"server_max_window_bits=%d" % server_bits)
    # The client's window: only if it offered the parameter (§7.1.2.2).
    client_bits = 15
    if "client_max_window_bits" in found:
        client_bits = min(found["client_max_window_bits"] or 15, ours.client_max_window_bits or 15)
        if client_bits != 15 or found["client_max_window_bits"] is not None:
            out.append(b"client_max_window_bits=%d" % client_bits)
    agreed = DeflateParams(
        snct, cnct, server_bits, client_bits, ours.compress_level, ours.mem_level
    )
    return agreed, b"; ".join(out)


def server_negotiate(
    offers: list[tuple[str, Params]], ours: DeflateSettings
) -> tuple[DeflateParams, bytes] | None:
    """Pick the first acceptable permessage-deflate offer, in the client's order of preference.

    Returns:
        The agreed parameters and the ``Sec-WebSocket-Extensions`` value that says so, or
        None when no offer can be accepted (the connection goes on uncompressed: §5 lets the
        server decline an offer with unknown or malformed parameters).
    """
    for name, params in offers:
        if name != EXTENSION_NAME:
            continue
        try:
            return _negotiate_one(params, ours)
        except ValueError:
            continue
    return None


def client_offer(ours: DeflateSettings) -> bytes:
    """The ``Sec-WebSocket-Extensions`` value a client sends to offer compression."""
    out = [EXTENSION_NAME.encode()]
    if ours.server_no_context_takeover:
        out.append(b"server_no_context_takeover")
    if ours.client_no_context_takeover:
        out.append(b"client_no_context_takeover")
    if ours.server_max_window_bits is not None:
        out.append(b"server_max_window_bits=%d" % ours.server_max_window_bits)
    # Always offered: it tells the server we can honour a smaller window it asks for.
    if ours.client_max_window_bits is not None:
        out.append(b"client_max_window_bits=%d" % ours.client_max_window_bits)
    else:
        out.append(b"client_max_window_bits")
    return b"; ".join(out)


def client_accept(params: Params, ours: DeflateSettings) -> DeflateParams:
    """Check the server's answer to :func:`client_offer` (RFC 7692 §7.1).

    Raises:
        HandshakeError: the answer has unknown, repeated or malformed parameters, drops a
            ``server_*`` parameter we asked for, or asks for a window we cannot use.
    """
    try:
        found = _read_params(params, offer=False)
    except ValueError as exc:
        raise HandshakeError(f"permessage-deflate response: {exc}") from None
    if ours.server_no_context_takeover and "server_no_context_takeover" not in found:
        raise HandshakeError("server_no_context_takeover was asked for and not granted")
    server_bits = found.get("server_max_window_bits")
    wanted = ours.server_max_window_bits
    if wanted is not None and (server_bits is None or server_bits > wanted):
        raise HandshakeError("server_max_window_bits was asked for and not granted")
    client_bits = found.get("client_max_window_bits")
    if client_bits is not None:
        if client_bits > (ours.client_max_window_bits or 15):
            raise HandshakeError("client_max_window_bits larger than offered")
        if client_bits < 9:
            raise HandshakeError("client_max_window_bits=8 cannot be honoured by zlib")
    return DeflateParams(
        "server_no_context_takeover" in found,
        "client_no_context_takeover" in found or ours.client_no_context_takeover,
        server_bits or 15,
        client_bits or ours.client_max_window_bits or 15,
        ours.compress_level,
        ours.mem_level,
    )


class Deflate:
    """One connection's compressor and decompressor, seen from one side.

    Args:
        params: what was negotiated.
        client: True on the client side (it compresses with the ``client_*`` parameters).
    """

    __slots__ = ("_compressor", "_decompressor", "_in_bits", "_in_reset", "_out_bits",
                 "_out_reset", "params")  # fmt: skip

    def __init__(self, params: DeflateParams, client: bool) -> None:
        self.params = params
        ours = ("client", "server") if client else ("server", "client")
        self._out_bits: int = getattr(params, f"{ours[0]}_max_window_bits")
        self._out_reset: bool = getattr(params, f"{ours[0]}_no_context_takeover")
        # A larger window inflates anything a smaller one compressed; 9 is zlib's least.
        self._in_bits: int = max(9, getattr(params, f"{ours[1]}_max_window_bits"))
        self._in_reset: bool = getattr(params, f"{ours[1]}_no_context_takeover")
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes, fin: bool = True) -> bytes:
        """Compress a message, or one fragment of it (``fin`` False until the last)."""
        c = self._compressor
        if c is None:
            p = self.params
            c = zlib.compressobj(p.compress_level, zlib.DEFLATED, -self._out_bits, p.mem_level)
            self._compressor = c
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self._out_reset:
                self._compressor = None
        return out

    def decompress(self, data: bytes, room: int) -> bytes:
        """Inflate a piece of a received message; at most ``room`` bytes may come out.

        Raises:
            RemoteWebSocketError: 1009 when the output would exceed ``room``; 1002 when the
                data is not valid DEFLATE.
        """
        d = self._decompressor
        if d is None:
            d = self._decompressor = zlib.decompressobj(-self._in_bits)
        elif d.eof:
            # After a block with BFINAL the rest of the message is padding (RFC 7692 §7.2.3.4
            # ends one with a 0x00): ignored, and not fed in, so zlib's unused_data stays empty.
            return b""
        try:
            out = d.decompress(data, room + 1)
        except zlib.error as exc:
            raise RemoteWebSocketError(f"invalid compressed data: {exc}") from None
        if len(out) > room:
            raise RemoteWebSocketError("message inflates past the size limit", 1009)
        return out

    def end_message(self, room: int) -> bytes:
        """Finish a received compressed message: the stripped tail goes back in (§7.2.2)."""
        out = self.decompress(_TAIL, room)
        d = self._decompressor
        if self._in_reset or (d is not None and d.eof):
            # A stream ended with BFINAL cannot go on; without context takeover it need not.
            self._decompressor = None
        return out
