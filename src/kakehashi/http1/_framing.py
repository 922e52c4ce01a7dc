"""Body framing and connection reuse, decided in one place for both sides (RFC 9112 §6.3, §9.3).

No I/O here.  The parser hands over the framing fields it found (lower-cased names and
values); these functions turn them into a :class:`Framing`, a length and the keep-alive
decision, or refuse the message.  Anything ambiguous is refused rather than guessed at,
because two parties guessing differently is how request smuggling works.
"""

from __future__ import annotations

from dataclasses import dataclass

from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.http1._abnf import DIGITS_RE, HOST_RE
from kakehashi.http1._events import Framing, Limits

__all__ = [
    "MessageInfo",
    "OutgoingFraming",
    "ResponseFraming",
    "decide_response_framing",
    "outgoing_response_framing",
    "request_info",
    "response_info",
]

# More digits than this cannot be a length we would accept; refuse before int() sees them.
_MAX_LENGTH_DIGITS = 18

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_NO_BODY, _LENGTH = Framing.NONE, Framing.LENGTH
_CHUNKED, _CLOSE = Framing.CHUNKED, Framing.CLOSE


@dataclass(slots=True)
class MessageInfo:
    """What the framing fields of one message mean."""

    framing: Framing
    content_length: int | None
    keep_alive: bool
    expect_continue: bool = False


# What most requests' framing fields say; shared, so never modified.
_NO_BODY_KEEP = MessageInfo(_NO_BODY, None, True, False)


def _split(value: bytes) -> list[bytes]:
    """A list field's elements, lower-cased (the tokens compared here are case-insensitive)."""
    return [item.strip(b" \t") for item in value.lower().split(b",")]


def _elements(values: list[bytes]) -> list[bytes]:
    """RFC 9110 §5.6.1: a recipient ignores empty list elements (``chunked,`` is ``chunked``)."""
    return [item for value in values for item in _split(value) if item]


def _content_length(values: list[bytes], limits: Limits | None) -> int:
    """RFC 9110 §8.6: digits only; repeated values must all be the same number."""
    items = [item for value in values for item in _split(value)]
    for item in items:
        if DIGITS_RE.fullmatch(item) is None:
            raise RemoteProtocolError(f"malformed Content-Length {item!r}")
    if len(set(items)) != 1:
        raise RemoteProtocolError("conflicting Content-Length values")
    digits = items[0].lstrip(b"0")  # leading zeros are digits too, and must not count
    if len(digits) > _MAX_LENGTH_DIGITS:
        raise RemoteProtocolError("Content-Length too large", 413)
    length = int(digits or b"0")
    if limits is not None and length > limits.max_body_bytes:
        raise RemoteProtocolError(
            f"body of {length} bytes exceeds the limit of {limits.max_body_bytes}", 413
        )
    return length


def _check_chunked(values: list[bytes]) -> None:
    """RFC 9112 §6.1, §7: the only transfer coding we decode is a single, final ``chunked``.

    Chunked not final, or applied twice, leaves the length unknowable: 400 (§6.3 item 4).
    Any other coding is one we do not implement: 501 (§6.1).
    """
    codings = _elements(values)
    if not codings:
        raise RemoteProtocolError("empty Transfer-Encoding")
    if codings[-1] != b"chunked" and b"chunked" in codings:
        raise RemoteProtocolError("chunked is not the final transfer coding")
    for coding in codings:
        if coding != b"chunked":
            raise RemoteProtocolError(f"unsupported transfer coding {coding!r}", 501)
    if len(codings) != 1:
        raise RemoteProtocolError("chunked transfer coding applied more than once")


def _keep_alive(http_version: bytes, connection: list[bytes] | None) -> bool:
    """RFC 9112 §9.3: 1.1 persists unless ``close``; 1.0 only with ``keep-alive``."""
    if connection is None:
        return http_version == b"1.1"
    if len(connection) == 1:  # the usual single value, without building a token set
        value = connection[0].lower()
        if value == b"keep-alive":
            return True
        if value == b"close":
            return False
    tokens = {t for value in connection for t in _split(value)}
    if b"close" in tokens:
        return False
    return http_version == b"1.1" or b"keep-alive" in tokens


def request_info(
    http_version: bytes, found: dict[bytes, list[bytes]], limits: Limits
) -> MessageInfo:
    """Decide a request's framing from its framing fields (values by lower-cased name).

    1. HTTP/1.1 needs exactly one valid Host (RFC 9112 §3.2); HTTP/1.0 at most one.
    2. Transfer-Encoding: refused in HTTP/1.0 (§6.1) and beside Content-Length (§6.3 step 3:
       smuggling); otherwise it must be exactly ``chunked`` (others: 501).
    3. Content-Length: digits, all equal, within ``max_body_bytes`` (413).
    4. Neither: no body (§6.3 step 7).
    5. Expect: ``100-continue`` is recognised in HTTP/1.1, ignored in 1.0 (RFC 9110 §10.1.1);
       any other expectation is 417.

    Raises:
        RemoteProtocolError: with status_hint 400, 413, 417 or 501.
    """
    hosts = found.get(b"host", ())
    if (len(hosts) != 1 if http_version == b"1.1" else len(hosts) > 1) or (
        hosts and HOST_RE.fullmatch(hosts[0]) is None
    ):
        raise RemoteProtocolError("a request needs exactly one valid Host header")
    if len(found) == len(hosts) == 1 and http_version == b"1.1":
        return _NO_BODY_KEEP  # the usual GET: Host and no other framing field
    keep_alive = _keep_alive(http_version, found.get(b"connection"))
    expect = found.get(b"expect")  # rare: no list is built for the usual request
    expect_continue = False
    if expect and http_version == b"1.1" and (expectations := _elements(expect)):
        if expectations != [b"100-continue"]:
            raise RemoteProtocolError(f"unsupported expectation {expectations!r}", 417)
        expect_continue = True
    te = found.get(b"transfer-encoding")
    cl = found.get(b"content-length")
    if te is not None:
        if http_version != b"1.1":
            raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request")
        if cl is not None:
            raise RemoteProtocolError("both Transfer-Encoding and Content-Length")
        _check_chunked(te)
        return MessageInfo(_CHUNKED, None, keep_alive, expect_continue)
    if cl is not None:
        length = _content_length(cl, limits)
        framing = _LENGTH if length else _NO_BODY
        return MessageInfo(framing, length, keep_alive, expect_continue and length > 0)
    return MessageInfo(_NO_BODY, None, keep_alive, False)


def response_info(
    request_method: bytes,
    status_code: int,
    http_version: bytes,
    found: dict[bytes, list[bytes]],
) -> MessageInfo:
    """Decide a received response's framing (RFC 9112 §6.3, client side).

    1. A response to HEAD, and any 1xx, 204 or 304, has no body.
    2. A 2xx to CONNECT turns the connection into a tunnel: no HTTP body, no reuse.
    3. Transfer-Encoding with a final ``chunked`` is chunked; Content-Length beside it is
       refused as ambiguous, and HTTP/1.0 with Transfer-Encoding is refused (§6.1).
    4. Content-Length: digits, all equal.
    5. Otherwise the body runs until the server closes the connection.

    Raises:
        RemoteProtocolError: the framing is malformed or ambiguous.
    """
    keep_alive = _keep_alive(http_version, found.get(b"connection"))
    if request_method == b"HEAD" or status_code < 200 or status_code in (204, 304):
        return MessageInfo(_NO_BODY, None, keep_alive)
    if request_method == b"CONNECT" and status_code < 300:
        return MessageInfo(_NO_BODY, None, False)
    te = found.get(b"transfer-encoding")
    cl = found.get(b"content-length")
    if te is not None:
        if http_version != b"1.1" or cl is not None:
            raise RemoteProtocolError("ambiguous response framing")
        codings = _elements(te)
        if codings and codings[-1] == b"chunked":
            return MessageInfo(_CHUNKED, None, keep_alive)
        return MessageInfo(_CLOSE, None, False)
    if cl is not None:
        length = _content_length(cl, None)
        return MessageInfo(_LENGTH, length, keep_alive)
    return MessageInfo(_CLOSE, None, False)


@dataclass(slots=True)
class OutgoingFraming:
    """How this side frames a response it sends, and the fields that says so on the wire."""

    framing: Framing
    content_length: int | None
    keep_alive: bool
    headers: list[tuple[bytes, bytes]]


def _scan_outgoing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """Content-Length, whether Connection is set, and whether it says close."""
    length: int | None = None
    has_connection = wants_close = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            if DIGITS_RE.fullmatch(value) is None or (length is not None and int(value) != length):
                raise LocalProtocolError(f"bad Content-Length {value!r} from the application")
            length = int(value)
        elif lname == b"transfer-encoding":
            raise LocalProtocolError("the application must not set Transfer-Encoding")
        elif lname == b"connection":
            has_connection = True
            wants_close = wants_close or b"close" in _split(value)
    return length, has_connection, wants_close


def outgoing_response_framing(
    request_method: bytes,
    request_version: bytes,
    request_keep_alive: bool,
    status_code: int,
    headers: list[tuple[bytes, bytes]],
) -> OutgoingFraming:
    """Decide how a response we send is framed, and complete its fields.

    The rules are :func:`decide_response_framing`'s; this scans ``headers`` for the facts it
    needs and returns the fields to send.

    Raises:
        LocalProtocolError: the application set Transfer-Encoding (hop-by-hop, ours to set)
            or a malformed Content-Length.
    """
    length, has_connection, wants_close = _scan_outgoing(headers)
    decision = decide_response_framing(
        request_method, request_version, request_keep_alive, status_code,
        length, has_connection, wants_close,
    )  # fmt: skip
    out = list(headers)
    if decision.drop_length:
        out = [(n, v) for n, v in out if n.lower() != b"content-length"]
    out.extend(decision.added)
    return OutgoingFraming(decision.framing, decision.content_length, decision.keep_alive, out)


@dataclass(slots=True)
class ResponseFraming:
    """How a response we send is framed, given what its fields say.

    ``added`` are fields to send after the application's; ``drop_length`` says to leave out
    the application's Content-Length (a 1xx or 204 must not carry one).
    """

    framing: Framing
    content_length: int | None
    keep_alive: bool
    added: tuple[tuple[bytes, bytes], ...]
    drop_length: bool = False


_CHUNKED_FIELD = (b"Transfer-Encoding", b"chunked")
_CLOSE_FIELD = (b"Connection", b"close")
_KEEP_ALIVE_FIELD = (b"Connection", b"keep-alive")


def decide_response_framing(
    request_method: bytes,
    request_version: bytes,
    request_keep_alive: bool,
    status_code: int,
    length: int | None,
    has_connection: bool,
    wants_close: bool,
) -> ResponseFraming:
    """Decide how a response we send is framed, from the facts its fields state: its
    Content-Length (checked digits, or None), whether it has a Connection field, and
    whether that says ``close``.

    1. No body for HEAD, 1xx, 204 and 304 (RFC 9110 §9.3.2, §15.3.5, §15.4.5); the fields
       are kept, so HEAD reports GET's Content-Length, except Content-Length on 1xx and 204.
    2. A Content-Length from the application is used as it is (and checked when sending).
    3. Otherwise HTTP/1.1 gets ``Transfer-Encoding: chunked``; HTTP/1.0 has no chunked
       coding, so the body runs until we close (RFC 9112 §6.3 step 8).
    4. ``Connection: close`` is added whenever the connection will not be reused, and
       ``Connection: keep-alive`` for an HTTP/1.0 client that asked to keep it.
    """
    keep_alive = request_keep_alive and not wants_close
    added: tuple[tuple[bytes, bytes], ...] = ()
    drop_length = False
    if status_code < 200 or status_code == 204:
        # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 1xx or 204 response;
        # frameworks often add "0" anyway, so it is dropped rather than refused.
        framing, drop_length, length = _NO_BODY, length is not None, None
    elif request_method == b"HEAD" or status_code == 304:
        framing = _NO_BODY
    elif length is not None:
        framing = _LENGTH
    elif request_version == b"1.1":
        framing = _CHUNKED
        added = (_CHUNKED_FIELD,)
    else:
        framing = _CLOSE
        keep_alive = False
    if not has_connection:
        if not keep_alive:
            added += (_CLOSE_FIELD,)
        elif request_version == b"1.0":
            added += (_KEEP_ALIVE_FIELD,)
    return ResponseFraming(framing, length, keep_alive, added, drop_length)
