"""Request targets: their four forms, and percent-decoding of paths.

No I/O here.  RFC 9112 §3.2 allows four forms of request-target; each is recognised and
split into path and query here, and a target of the wrong form for its method is refused.
Percent-decoding is strict: a ``%`` not followed by two hex digits is an error (400), never
passed through, so ``/a%2`` and ``/a%zz`` cannot mean different things to different layers;
nor does a decoded path ever hold a NUL, which C-level file APIs read as the end of a string.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from kakehashi.errors import RemoteProtocolError
from kakehashi.http1._abnf import HOST_RE

__all__ = [
    "absolute_authority",
    "decode_path",
    "decode_path_text",
    "is_plain_path",
    "split_target",
]

# The usual target: an origin-form path with no escape, query or fragment, which is its own
# path.  One match in C; three ``in`` tests would each raise and format a TypeError on
# Python 3.11 first (``bytes in bytes`` tries its argument as an int).
_PLAIN_PATH_RE = re.compile(rb"/[^%?#]*")


def is_plain_path(target: bytes) -> bool:
    """True for an origin-form target that needs no splitting or decoding (``/a/b``)."""
    return _PLAIN_PATH_RE.fullmatch(target) is not None


# RFC 9112 §3.2.2: absolute-form = absolute-URI, here only http and https.
_ABSOLUTE_RE = re.compile(rb"[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)([^?#]*)(?:\?([^#]*))?")
# RFC 9112 §3.2.3: authority-form = uri-host ":" port, for CONNECT only.
_AUTHORITY_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]+):[0-9]+")
_BAD_ESCAPE_RE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def split_target(method: bytes, target: bytes) -> tuple[bytes, bytes]:
    """Split a request-target into ``(path, query)``, both still percent-encoded.

    1. origin-form ``/path?query``: the usual case.
    2. absolute-form ``http://host/path?query``: the path and query are taken; an empty path
       is ``/`` (RFC 9112 §3.2.2).
    3. authority-form ``host:port``: CONNECT only, and CONNECT takes no other form; the path
       is the authority, no query.
    4. asterisk-form ``*``: OPTIONS only; the path is ``*``.

    Raises:
        RemoteProtocolError: 400 for a form the method does not allow, or a fragment.
    """
    if method == b"CONNECT":  # before origin-form: "CONNECT /x" is not allowed either
        if _AUTHORITY_RE.fullmatch(target) is None:
            raise RemoteProtocolError("CONNECT needs an authority-form target (host:port)")
        return target, b""
    if target.startswith(b"/"):
        path, _, query = target.partition(b"?")
        if target.find(b"#") >= 0:  # find(), not ``in``: see _PLAIN_PATH_RE
            raise RemoteProtocolError("a request target cannot carry a fragment")
        return path, query
    if target == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("the asterisk target is for OPTIONS only")
        return target, b""
    m = _ABSOLUTE_RE.fullmatch(target)
    if m is None or not m.group(1):
        raise RemoteProtocolError(f"malformed request target {target[:80]!r}")
    _check_authority(m.group(1))
    return m.group(2) or b"/", m.group(3) or b""


def absolute_authority(target: bytes) -> bytes | None:
    """The authority (``host[:port]``) of an absolute-form target, None for any other form.

    RFC 9112 §3.2.2: a server MUST use this authority as the request's host, and ignore the
    Host field.

    Raises:
        RemoteProtocolError: 400 for userinfo (``http://user@host/``) or an invalid host.
    """
    m = _ABSOLUTE_RE.fullmatch(target)
    if m is None or not m.group(1):
        return None
    _check_authority(m.group(1))
    return m.group(1)


def _check_authority(authority: bytes) -> None:
    if b"@" in authority:
        # RFC 9110 §4.2.4: userinfo is deprecated and a recipient SHOULD treat it as an error
        # (it is how "http://good.example@evil.example/" misleads a reader).
        raise RemoteProtocolError("a request target cannot carry userinfo")
    if HOST_RE.fullmatch(authority) is None:
        raise RemoteProtocolError(f"malformed authority {authority[:80]!r} in the target")


def decode_path(path: bytes) -> bytes:
    """Percent-decode a path to raw bytes (``%2F`` becomes ``/``, as WSGI servers do).

    Raises:
        RemoteProtocolError: 400 for a ``%`` not followed by two hex digits, or a ``%00``.
    """
    if path.find(b"%") < 0:  # find(), not ``in``: see _PLAIN_PATH_RE
        return path
    if _BAD_ESCAPE_RE.search(path):
        raise RemoteProtocolError(f"malformed percent-encoding in {path[:80]!r}")
    decoded = unquote_to_bytes(path)
    if b"\x00" in decoded:
        raise RemoteProtocolError("a NUL (%00) in the path")
    return decoded


def decode_path_text(path: bytes) -> str:
    """Percent-decode a path and read it as UTF-8: ``/greeting/%E5%A4%AA%E9%83%8E`` → ``太郎``.

    Raises:
        RemoteProtocolError: 400 for a malformed escape or bytes that are not UTF-8.
    """
    try:
        return decode_path(path).decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("the path is not valid UTF-8") from None
