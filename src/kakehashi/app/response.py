"""Responses: the ``Response`` class, ``redirect``, ``abort``, and turning what a view returns
into a response.

A view may return ``str`` (text/plain; charset=utf-8), ``bytes`` (application/octet-stream),
a ``dict`` or ``list`` (application/json), a ``Response``, any other iterable of ``bytes`` or
``str`` chunks (streamed, application/octet-stream unless the view says otherwise), or a tuple
``(body, status)`` / ``(body, status, headers)`` of those.

This module must not route, log or catch a view's exceptions; the application does that.

Invariants: every response but 1xx/204/304 carries a Content-Type; a body given as bytes is
sent with its exact Content-Length, also in answer to HEAD, where the body itself is dropped;
a streamed body is closed whether or not it is sent.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any, BinaryIO, NoReturn

from kakehashi.errors import BadRequest, HTTPError, NotFound

from .datastructures import Headers

__all__ = ["FileSlice", "Response", "abort", "make_response", "redirect", "status_phrase"]

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]
StartResponse = Callable[..., Any]
TEXT = "text/plain; charset=utf-8"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 6265 cookie-octet: printable ASCII minus space, DQUOTE, comma, semicolon, backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
_NO_BODY = frozenset({204, 304})
_FILE_BLOCK = 64 * 1024


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class Response:
    """A status, headers and a body (bytes, or an iterable of chunks to stream)."""

    def __init__(
        self,
        body: str | bytes | bytearray | memoryview | Iterable[bytes | str] = b"",
        status: int = 200,
        headers: HeaderInput | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = _checked_status(status)
        self.headers = Headers(headers or ())
        default_type = TEXT if isinstance(body, str) else "application/octet-stream"
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body: bytes | Iterable[bytes | str] = (
            bytes(body) if isinstance(body, bytearray | memoryview) else body
        )
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        self.headers.setdefault("Content-Type", default_type)

    def __repr__(self) -> str:
        return f"<Response {self.status_line}>"

    @property
    def status_code(self) -> int:
        """``status`` under Flask's name; setting it checks the value (100-999)."""
        return self.status

    @status_code.setter
    def status_code(self, status: int) -> None:
        self.status = _checked_status(status)

    @property
    def status_line(self) -> str:
        return f"{self.status} {status_phrase(self.status)}"

    def set_cookie(
        self,
        name: str,
        value: str = "",
        *,
        max_age: int | dt.timedelta | None = None,
        expires: dt.datetime | float | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: str | None = "Lax",
    ) -> None:
        """Add a ``Set-Cookie`` header; ``ValueError`` for characters a cookie cannot hold.

        HttpOnly and SameSite=Lax are on by default because a cookie a script can read or a
        cross-site form can send is the unsafe choice; pass ``httponly=False`` to opt out.
        """
        if not _TOKEN.fullmatch(name) or not _COOKIE_VALUE.fullmatch(value):
            raise ValueError(f"cookie {name!r}: name or value has a forbidden character")
        parts = [f"{name}={value}"]
        if max_age is not None:
            seconds = max_age.total_seconds() if isinstance(max_age, dt.timedelta) else max_age
            parts.append(f"Max-Age={int(seconds)}")
        if expires is not None:
            parts.append(f"Expires={_http_date(expires)}")
        for label, text in (("Domain", domain), ("Path", path)):
            if text is not None:
                if not _ATTRIBUTE_VALUE.fullmatch(text):
                    raise ValueError(f"cookie {name!r}: {label} has a forbidden character")
                parts.append(f"{label}={text}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite is not None:
            if samesite.title() not in ("Strict", "Lax", "None"):
                raise ValueError(f"cookie {name!r}: SameSite must be Strict, Lax or None")
            parts.append(f"SameSite={samesite.title()}")
        self.headers.add("Set-Cookie", "; ".join(parts))

    def delete_cookie(
        self, name: str, *, path: str | None = "/", domain: str | None = None
    ) -> None:
        """Tell the client to forget ``name`` (it must match the cookie's path and domain)."""
        self.set_cookie(name, "", max_age=0, expires=0, path=path, domain=domain)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Send this response over WSGI; a ``Response`` is itself a WSGI application."""
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if self.status in _NO_BODY or self.status < 200:
            self.headers.remove("Content-Type")
            self.headers.remove("Content-Length")
            _close(self.body)
            start_response(self.status_line, self.headers.items())
            return []
        if isinstance(self.body, FileSlice):
            return self._send_file(self.body, environ, start_response, head)
        if isinstance(self.body, bytes):
            self.headers.set("Content-Length", str(len(self.body)))
            start_response(self.status_line, self.headers.items())
            return [] if head else [self.body]
        start_response(self.status_line, self.headers.items())
        if head:
            _close(self.body)
            return []
        return _Chunks(self.body)

    def _send_file(
        self, body: FileSlice, environ: dict[str, Any], start_response: StartResponse, head: bool
    ) -> Iterable[bytes]:
        self.headers.set("Content-Length", str(body.length))
        start_response(self.status_line, self.headers.items())
        if head:
            body.close()
            return []
        # Returned as is: a server recognises its own wrapper (kakehashi's then uses sendfile).
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(body, _FILE_BLOCK) if wrapper is not None else body


class FileSlice:
    """``length`` bytes of an open binary file from ``offset``: a body a server can sendfile.

    It reads like a file that ends after ``length`` bytes, and gives ``fileno`` and ``tell``
    of the real file, which is what ``wsgi.file_wrapper`` implementations look for.
    """

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        file.seek(offset)
        self.file = file
        self.length = length
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        data = self.file.read(size) if size else b""
        self._left -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(_FILE_BLOCK):
            yield block

    def fileno(self) -> int:
        return self.file.fileno()

    def tell(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


class _Chunks:
    """Encodes ``str`` chunks as UTF-8 and forwards ``close`` to the view's iterable."""

    def __init__(self, chunks: Iterable[bytes | str]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            yield chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)

    def close(self) -> None:
        _close(self._chunks)


def _close(body: object) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()


def _http_date(when: dt.datetime | float) -> str:
    if isinstance(when, dt.datetime):
        aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return email.utils.format_datetime(aware.astimezone(dt.UTC), usegmt=True)
    return email.utils.formatdate(when, usegmt=True)


def redirect(location: str, status: int = 302) -> Response:
    """A redirect to ``location``; non-ASCII characters are percent-encoded for the header."""
    if status not in (301, 302, 303, 307, 308):
        raise ValueError(f"{status} is not a redirect status")
    target = urllib.parse.quote(location, safe="/:?#[]@!$&'()*+,;=%~")
    return Response(f"{status} {status_phrase(status)}: {target}\n", status, [("Location", target)])


def abort(status: int, description: str | None = None) -> NoReturn:
    """Stop the view and answer ``status`` (its error handler, or a short plain-text page)."""
    error_class = {400: BadRequest, 404: NotFound}.get(status)
    if error_class is not None:
        raise error_class(description)
    raise HTTPError(description or status_phrase(status), status=status)


def make_response(value: Any) -> Response:
    """Turn a view's return value into a ``Response``; ``TypeError`` for anything else."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple):
        return _from_tuple(value)
    if isinstance(value, str | bytes | bytearray | memoryview):
        return Response(value)
    if isinstance(value, dict | list):
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return Response(data, content_type="application/json")
    if value is not None and isinstance(value, Iterable):
        return Response(value)
    raise TypeError(f"a view returned {type(value).__name__}, which is not a response")


def _from_tuple(value: tuple[Any, ...]) -> Response:
    if len(value) not in (2, 3) or isinstance(value[0], tuple) or not isinstance(value[1], int):
        raise TypeError("a view's tuple must be (body, status) or (body, status, headers)")
    response = make_response(value[0])
    response.status_code = value[1]
    if len(value) == 3:
        response.headers.update(value[2])
    return response


def _checked_status(status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"invalid status {status!r}")
    return status
