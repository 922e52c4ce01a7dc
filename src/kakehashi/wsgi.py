"""PEP 3333 glue: the environ of a request, and the ``start_response`` callable.

No sockets and no threads here: the server hands in a parsed :class:`kakehashi.http1.Request`,
the body stream and the peer address, and gets back a dict; the application's status and
headers come back validated and encoded, ready for :mod:`kakehashi.http1` to frame.

Native strings are latin-1 (PEP 3333 "bytes in, bytes out"): ``PATH_INFO`` holds the
percent-decoded path bytes, each mapped to one character, so ``/greeting/太郎`` arrives as its
UTF-8 bytes and an application recovers it with ``.encode("latin-1").decode("utf-8")``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar

from kakehashi.errors import LocalProtocolError
from kakehashi.http1 import Request, absolute_authority, decode_path, is_plain_path, split_target

__all__ = [
    "HOP_BY_HOP",
    "EnvironBuilder",
    "FileWrapper",
    "HeadCache",
    "InputStream",
    "StartResponse",
    "WSGIApp",
    "base_environ",
]

T = TypeVar("T")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# RFC 9110 §7.6.1 and PEP 3333 ("applications must not use hop-by-hop headers"); Connection
# is allowed so an application can ask for the connection to be closed.
HOP_BY_HOP = frozenset(
    ["keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"]
)  # fmt: skip
# RFC 9110 §15: a 1xx is interim, never the final answer to a request, and the server sends
# the only interim response it supports (100 Continue) itself: an application gives 2xx-5xx.
_STATUS_RE = re.compile(r"[2-5][0-9][0-9] [\t \x21-\x7e\x80-\xff]*")
_NAME_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: CR, LF, NUL and the other CTLs but HTAB are refused anywhere in a value.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS_RE = re.compile(rb"[0-9]+")
# Caching the environ key of each header name is bounded, so a client sending endless new
# names cannot grow it.
_MAX_CACHED_KEYS = 512


class InputStream(Protocol):
    """What ``wsgi.input`` must offer (PEP 3333): the server's body streams and io.BytesIO."""

    def read(self, size: int | None = -1, /) -> bytes: ...

    def readline(self, size: int | None = -1, /) -> bytes: ...

    def readlines(self, hint: int = -1, /) -> list[bytes]: ...

    def __iter__(self) -> Iterator[bytes]: ...


# Strings every request would otherwise decode anew.
_METHODS = {
    m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")
}
_PROTOCOLS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}


class EnvironBuilder:
    """Builds the environ of each request for one server.

    Args:
        base: the keys that are the same for every request of this server (SERVER_NAME,
            SERVER_PORT, wsgi.url_scheme, wsgi.errors, wsgi.multithread, ...).

    Thread-safety: shared by all worker threads; ``_keys`` is only ever added to (a dict
    assignment is atomic under the GIL), and a lost race only repeats a computation.
    """

    __slots__ = ("_base", "_keys")

    def __init__(self, base: dict[str, Any]) -> None:
        self._base = base
        self._keys: dict[bytes, str | None] = {}

    def _key(self, name: bytes) -> str | None:
        key = self._keys.get(name, "")
        if key != "":
            return key
        # Underscores would let "X_Auth" spoof "X-Auth" (both are HTTP_X_AUTH): such fields
        # are dropped, as nginx and gunicorn do.
        text = name.decode("latin-1").upper()
        if "_" in text:
            key = None
        elif text in ("CONTENT-TYPE", "CONTENT-LENGTH"):
            key = text.replace("-", "_")
        else:
            key = "HTTP_" + text.replace("-", "_")
        if len(self._keys) < _MAX_CACHED_KEYS:
            self._keys[name] = key
        return key

    def build(self, request: Request, body: InputStream, peer: tuple[str, int]) -> dict[str, Any]:
        """The environ for ``request``.

        An absolute-form target (``GET http://host/x``) gives ``HTTP_HOST`` from its authority
        (RFC 9112 §3.2.2); ``SERVER_NAME`` and ``SERVER_PORT`` stay the listening socket's, as
        for every request.

        Raises:
            RemoteProtocolError: 400 for a malformed target or percent-encoding, a ``%00`` in
                the path, or userinfo in an absolute-form target.
        """
        target = request.target
        authority = None
        uri = target.decode("latin-1")
        environ = self._base.copy()
        if is_plain_path(target):  # the common case, without the general splitting
            environ["PATH_INFO"], environ["QUERY_STRING"] = uri, ""
        else:
            path, query = split_target(request.method, target)
            environ["PATH_INFO"] = decode_path(path).decode("latin-1")
            environ["QUERY_STRING"] = query.decode("latin-1")
            authority = absolute_authority(target)
        method = request.method
        environ["REQUEST_METHOD"] = _METHODS.get(method) or method.decode("latin-1")
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri
        version = request.http_version
        environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(version) or "HTTP/" + version.decode("latin-1")
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
        environ["wsgi.input"] = body
        environ["wsgi.input_terminated"] = True
        keys = self._keys
        for name, value in request.headers:
            key = keys.get(name) or self._key(name)
            if key is None:
                continue
            if key in environ:
                # RFC 9110 §5.3: repeated fields combine with commas (Cookie with "; ").
                sep = "; " if key == "HTTP_COOKIE" else ","
                environ[key] += sep + value.decode("latin-1")
            else:
                environ[key] = value.decode("latin-1")
        if request.content_length is not None:
            # RFC 9112 §6.3: a repeated, equal Content-Length ("5, 5", or two fields) is
            # processed as that single value; the application never sees the list.
            environ["CONTENT_LENGTH"] = str(request.content_length)
        if authority is not None:
            environ["HTTP_HOST"] = authority.decode("latin-1")  # RFC 9112 §3.2.2: not Host
        return environ


# What the server must know of a response field beyond sending it (StartResponse notes it).
PLAIN, CONTENT_LENGTH, CONNECTION, CONNECTION_CLOSE, DATE, SERVER = range(6)
_KINDS = {"content-length": CONTENT_LENGTH, "connection": CONNECTION, "date": DATE,
          "server": SERVER}  # fmt: skip
# Content-Length values longer than this are not lengths any response could have.
_MAX_LENGTH_DIGITS = 18

# One field as the application gave it, checked and encoded: its name and value in
# latin-1, its line as sent ("Name: value\r\n"), its kind, and for Content-Length the number.
Field = tuple[bytes, bytes, bytes, int, int]


class HeadCache:
    """Statuses and fields an application has already had validated, per server.

    Applications send the same few statuses and fields on every response, so their checks
    and encodings are remembered (up to a bound, so a misbehaving application cannot grow
    it: past it, new ones are checked every time).  Shared by worker threads: single dict
    reads and writes only, atomic under the GIL.
    """

    __slots__ = ("fields", "names", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[str, tuple[int, bytes]] = {}
        self.names: dict[str, tuple[bytes, str]] = {}
        self.fields: dict[tuple[str, str], Field] = {}

    def status(self, status: object) -> tuple[int, bytes]:
        return _remember(self.statuses, status, _check_status)

    def name(self, name: object) -> tuple[bytes, str]:
        return _remember(self.names, name, _check_name)

    def field(self, item: object) -> Field:
        """A ``(name, value)`` pair of str, checked and encoded (raises if not allowed)."""
        if type(item) is not tuple or len(item) != 2:
            raise LocalProtocolError(f"a header must be a (name, value) tuple, not {item!r}")
        if type(item[0]) is not str or type(item[1]) is not str:
            return self._check_field(item)  # raises
        return _remember(self.fields, item, self._check_field)

    def _check_field(self, item: tuple[object, object]) -> Field:
        name, value = item
        bname, lname = self.name(name)
        if type(value) is not str or _BAD_VALUE_RE.search(value):
            raise LocalProtocolError(f"invalid value {value!r} for header {name!r}")
        try:
            # RFC 9110 §5.5: whitespace around a value is not part of it.  Django writes
            # every Set-Cookie as " name=value", so it is trimmed rather than refused.
            bvalue = value.strip(" \t").encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"header {name!r} is not latin-1") from None
        kind, number = _KINDS.get(lname, PLAIN), 0
        if kind == CONTENT_LENGTH:
            if _DIGITS_RE.fullmatch(bvalue) is None or len(bvalue) > _MAX_LENGTH_DIGITS:
                raise LocalProtocolError(f"bad Content-Length {value!r} from the application")
            number = int(bvalue)
        elif kind == CONNECTION and "close" in [t.strip(" \t") for t in value.lower().split(",")]:
            kind = CONNECTION_CLOSE
        return bname, bvalue, b"%s: %s\r\n" % (bname, bvalue), kind, number


def _remember(memo: dict[Any, T], key: Any, check: Callable[[Any], T]) -> T:
    """``check(key)``, remembered for a str key (or a pair of str), up to
    ``_MAX_CACHED_KEYS`` entries."""
    known = memo.get(key) if type(key) is str or type(key) is tuple else None
    if known is not None:
        return known
    checked = check(key)  # raises for anything invalid, so only valid keys are stored
    if len(memo) < _MAX_CACHED_KEYS:
        memo[key] = checked
    return checked


class StartResponse:
    """The ``start_response`` callable of one request (PEP 3333).

    After the application calls it, ``status_code``, ``reason``, ``headers`` (encoded to
    latin-1 bytes and validated) and ``lines`` (the same, as the lines that go on the wire)
    are set, and the facts about them the server needs: ``content_length`` (the number the
    application gave, or None), ``connection`` (0 none, CONNECTION, or CONNECTION_CLOSE when
    it says close) and ``has_date`` and ``has_server``.  ``headers_sent`` is set by the
    server once the head is on the wire; from then on a call with ``exc_info`` re-raises the
    error.

    Args:
        write: the ``write()`` callable handed back to the application.
        cache: the server's HeadCache (a private one if not given).
    """

    __slots__ = (
        "cache", "connection", "content_length", "has_date", "has_server", "headers",
        "headers_sent", "lines", "reason", "status_code", "write",
    )  # fmt: skip

    def __init__(self, write: Callable[[bytes], None], cache: HeadCache | None = None) -> None:
        self.write = write
        self.cache = cache if cache is not None else HeadCache()
        self.status_code = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.lines: list[bytes] = []
        self.content_length: int | None = None
        self.connection = 0
        self.has_date = self.has_server = False
        self.headers_sent = False

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle
        elif self.status_code:
            raise LocalProtocolError("start_response called twice without exc_info")
        cache = self.cache
        seen = cache.statuses.get(status) if type(status) is str else None
        code, reason = seen or cache.status(status)
        if type(headers) is not list:
            raise LocalProtocolError(f"headers must be a list, not {type(headers).__name__}")
        known = cache.fields
        self.content_length, self.connection = None, 0
        self.has_date = self.has_server = False
        # One loop, not comprehensions: on Python 3.11 each of those is a function made and
        # called on every response.
        pairs: list[tuple[bytes, bytes]] = []
        lines: list[bytes] = []
        for item in headers:
            try:
                field = known.get(item) or cache.field(item)
            except TypeError:  # unhashable: checked as it is, to say what is wrong
                field = cache.field(item)
            pairs.append((field[0], field[1]))
            lines.append(field[2])
            if field[3]:  # one of the few kinds the server acts on
                self._note(field)
        self.headers, self.lines = pairs, lines
        self.status_code, self.reason = code, reason
        return self.write

    def _note(self, field: Field) -> None:
        kind = field[3]
        if kind == CONTENT_LENGTH:
            if self.content_length is not None and self.content_length != field[4]:
                raise LocalProtocolError("conflicting Content-Length values from the application")
            self.content_length = field[4]
        elif kind in (CONNECTION, CONNECTION_CLOSE):
            self.connection = max(self.connection, kind)
        elif kind == DATE:
            self.has_date = True
        else:
            self.has_server = True


def _check_status(status: object) -> tuple[int, bytes]:
    if type(status) is not str or _STATUS_RE.fullmatch(status) is None:
        if type(status) is str and status[:1] == "1":
            # Sent as the final response, it would leave the connection one answer behind.
            raise LocalProtocolError(f"an application cannot answer with 1xx ({status!r})")
        raise LocalProtocolError(f"invalid status {status!r}: want a str like '200 OK'")
    return int(status[:3]), status[4:].encode("latin-1")


def _check_name(name: object) -> tuple[bytes, str]:
    """A header name's latin-1 bytes and lower-cased form, once it is known to be allowed."""
    if type(name) is not str or _NAME_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    lname = name.lower()
    if lname in HOP_BY_HOP:
        raise LocalProtocolError(f"hop-by-hop header {name!r} is the server's to set")
    return name.encode("latin-1"), lname


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333 optional extension): iterate a file in blocks.

    The server sends a FileWrapper over a real file with ``os.sendfile`` instead of
    iterating it; anything else about it is an ordinary iterable.
    """

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        while block := self.filelike.read(self.blksize):
            yield block

    def close(self) -> None:
        self.filelike.close()


def base_environ(
    server_name: str, server_port: int, url_scheme: str = "http", multiprocess: bool = False
) -> dict[str, Any]:
    """The keys shared by every request of one server."""
    return {
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SCRIPT_NAME": "",
        "SERVER_SOFTWARE": "kakehashi",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
