"""Hypothesis strategies for HTTP/1.1 requests, and a runner that summarises what a server
Connection makes of some bytes.  Shared by the property tests and the h11 differential.

The serialiser here is deliberately separate from kakehashi's writers, so a round trip
checks the parser against an independent rendering of the grammar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FRAMING = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"}

tokens = st.text(TCHAR, min_size=1, max_size=12).map(str.encode)
methods = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS"]) | tokens
paths = st.text("abcXYZ019-._~!$&'()*+,;=:@/?%", max_size=30).map(lambda s: b"/" + s.encode())
# field-value: visible bytes and obs-text, single spaces or tabs inside, none at the ends.
_vchar = st.integers(0x21, 0x7E) | st.integers(0x80, 0xFF)
words = st.lists(_vchar, min_size=1, max_size=10).map(bytes)
values = st.lists(words, max_size=4).flatmap(
    lambda ws: st.sampled_from([b" ", b"\t", b"  "]).map(lambda sep: sep.join(ws))
)
names = tokens.filter(lambda n: n.lower() not in FRAMING)


@dataclass
class Message:
    method: bytes
    target: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    framing: str = "none"  # none, length, chunked
    chunks: list[int] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def serialise(self) -> bytes:
        fields = list(self.headers)
        if self.framing == "length":
            fields.append((b"Content-Length", b"%d" % len(self.body)))
        elif self.framing == "chunked":
            fields.append((b"Transfer-Encoding", b"chunked"))
        head = b"%s %s HTTP/%s\r\n" % (self.method, self.target, self.version)
        head += b"".join(b"%s: %s\r\n" % f for f in fields) + b"\r\n"
        if self.framing != "chunked":
            return head + self.body
        out, pos = [head], 0
        for size in self.chunks:
            out.append(b"%x\r\n%s\r\n" % (size, self.body[pos : pos + size]))
            pos += size
        out.append(b"0\r\n" + b"".join(b"%s: %s\r\n" % f for f in self.trailers) + b"\r\n")
        return b"".join(out)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    headers = draw(st.lists(st.tuples(names, values), max_size=8))
    if version == b"1.1" or draw(st.booleans()):
        headers.insert(draw(st.integers(0, len(headers))), (b"Host", b"example.com"))
    framing = draw(
        st.sampled_from(["none", "length", "chunked"] if version == b"1.1" else ["none", "length"])
    )
    msg = Message(draw(methods), draw(paths), version, headers, framing=framing)
    if framing == "length":
        msg.body = draw(st.binary(max_size=40))
    elif framing == "chunked":
        msg.chunks = draw(st.lists(st.integers(1, 20), max_size=4))
        msg.body = draw(st.binary(min_size=sum(msg.chunks), max_size=sum(msg.chunks)))
        msg.trailers = draw(st.lists(st.tuples(names, values), max_size=2))
    return msg


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request with a few bytes inserted, deleted or replaced by likely troublemakers."""
    raw = bytearray(draw(messages()).serialise())
    special = st.sampled_from(b'\r\n\t \x00\x01\x0b\x7f\x80:;,"\\0aAfF-+x')
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(special | st.integers(0, 255))
        if op == "insert":
            raw.insert(pos, byte)
        elif pos < len(raw):
            if op == "delete":
                del raw[pos]
            else:
                raw[pos] = byte
    return bytes(raw)


Outcome = tuple[str, object]


def first_message(pieces: list[bytes], limits: http1.Limits = http1.DEFAULT_LIMITS) -> Outcome:
    """What a server makes of the first message: ("ok", summary) or ("error", status)."""
    conn = http1.Connection(http1.Role.SERVER, limits)
    request: http1.Request | None = None
    body = b""
    try:
        for piece in [*pieces, b""]:
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if isinstance(event, http1.Request):
                    request = event
                elif isinstance(event, http1.Data):
                    body += event.data
                elif isinstance(event, http1.EndOfMessage):
                    assert request is not None
                    return "ok", summary(request, body, event.trailers)
                elif isinstance(event, http1.ConnectionClosed):
                    return "closed", None
                else:
                    break
    except RemoteProtocolError as exc:
        return "error", exc.status_hint
    raise AssertionError("the stream ended without an outcome")


def summary(request: http1.Request, body: bytes, trailers: http1.Headers) -> object:
    return (
        request.method,
        request.target,
        request.http_version,
        [(n.lower(), v) for n, v in request.headers],
        body,
        [(n.lower(), v) for n, v in trailers],
    )
