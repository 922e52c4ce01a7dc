"""Request targets: their four forms, and percent-decoding of paths.

No I/O here.  RFC 9112 §3.2 allows four forms of request-target; each is recognised and
split into path and query here, and a target of the wrong form for its method is refused.
Percent-decoding is strict: a ``%`` not followed by two hex digits is an error (400), never
passed through, so ``/a%2`` and ``/a%zz`` cannot mean different things to different layers.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from kakehashi.errors import RemoteProtocolError

__all__ = ["decode_path", "decode_path_text", "split_target"]

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
        if b"#" in target:
            raise RemoteProtocolError("a request target cannot carry a fragment")
        return path, query
    if target == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("the asterisk target is for OPTIONS only")
        return target, b""
    m = _ABSOLUTE_RE.fullmatch(target)
    if m is None or not m.group(1):
        raise RemoteProtocolError(f"malformed request target {target[:80]!r}")
    return m.group(2) or b"/", m.group(3) or b""


def decode_path(path: bytes) -> bytes:
    """Percent-decode a path to raw bytes (``%2F`` becomes ``/``, as WSGI servers do).

    Raises:
        RemoteProtocolError: 400 for a ``%`` not followed by two hex digits.
    """
    if b"%" not in path:
        return path
    if _BAD_ESCAPE_RE.search(path):
        raise RemoteProtocolError(f"malformed percent-encoding in {path[:80]!r}")
    return unquote_to_bytes(path)


def decode_path_text(path: bytes) -> str:
    """Percent-decode a path and read it as UTF-8: ``/greeting/%E5%A4%AA%E9%83%8E`` → ``太郎``.

    Raises:
        RemoteProtocolError: 400 for a malformed escape or bytes that are not UTF-8.
    """
    try:
        return decode_path(path).decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("the path is not valid UTF-8") from None
