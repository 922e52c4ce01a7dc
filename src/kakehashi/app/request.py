"""The request a view receives: a read-only, lazily parsed view of one WSGI environ.

PEP 3333 hands the path over percent-decoded, as a latin-1 string standing for bytes; the
request turns it back into bytes and decodes them as UTF-8, so ``/greeting/%E5%A4%AA%E9%83%8E``
reaches the view as ``/greeting/太郎``.  Everything else (query, headers, cookies, body, forms)
is parsed on first use and cached.  A multipart body is parsed as it is read from
``wsgi.input`` (files spooled to disk beyond ``spool_size``), so ``body`` is not available
after ``form`` or ``files`` read one; read ``body`` first to have both.

This module must not write a response or decide a status: it raises ``BadRequest`` (400) or
an ``HTTPError`` (413) and the application turns those into pages.

Invariants: constructing a ``Request`` never raises; a bad path is recorded in ``path_error``
and ``path`` then holds a lossy decoding (U+FFFD for bad bytes) so that error pages can still
show it.  The body is read from ``wsgi.input`` at most once, never beyond ``CONTENT_LENGTH``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from functools import cached_property
from typing import Any, Protocol

from kakehashi.errors import BadRequest, HTTPError

from .datastructures import FileStorage, Headers, MultiDict, ReadOnlyHeaders
from .forms import parse_multipart, parse_options_header, parse_urlencoded

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_SPOOL_SIZE", "Request"]

DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
DEFAULT_SPOOL_SIZE = 512 * 1024
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_READ_CHUNK = 64 * 1024
_URL_SAFE = "/!$&'()*+,;=:@"


class URLBuilder(Protocol):
    def build(self, endpoint: str, params: dict[str, Any]) -> str: ...


def decode_path(environ: dict[str, Any]) -> tuple[str, str | None]:
    """The Unicode path and, when the client sent a bad one, why it is bad."""
    raw: str = environ.get("PATH_INFO", "") or "/"
    try:
        path = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        lossy = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        return lossy, "the path is not valid UTF-8"
    # PATH_INFO is already decoded; only the raw target, when a server keeps it, shows "%zz".
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if _BAD_PERCENT.search(target.partition("?")[0]):
        return path, "the path has a malformed percent-encoding"
    return path, None


class Request:
    """One HTTP request, handed explicitly to every view as its first argument."""

    def __init__(
        self,
        environ: dict[str, Any],
        router: URLBuilder | None = None,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        spool_size: int = DEFAULT_SPOOL_SIZE,
    ) -> None:
        self.environ = environ
        self.method: str = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.path, self.path_error = decode_path(environ)
        self.endpoint: str | None = None
        self.group: str | None = None
        self.params: dict[str, Any] = {}
        self._router = router
        self._max_body_size = max_body_size
        self._spool_size = spool_size
        self._input_read = False

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path!r}>"

    # --- URL -------------------------------------------------------------------------------

    @cached_property
    def query(self) -> MultiDict[str]:
        return parse_urlencoded(self.environ.get("QUERY_STRING", ""))

    @property
    def query_string(self) -> str:
        return str(self.environ.get("QUERY_STRING", ""))

    @property
    def script_root(self) -> str:
        """Where the application is mounted, percent-encoded, without a trailing slash."""
        script = str(self.environ.get("SCRIPT_NAME", "")).rstrip("/")
        return urllib.parse.quote(script.encode("latin-1", "replace"), safe=_URL_SAFE)

    @property
    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", "http"))

    @property
    def host(self) -> str:
        host = self.environ.get("HTTP_HOST")
        if host:
            return str(host)
        name, port = self.environ.get("SERVER_NAME", "localhost"), self.environ.get("SERVER_PORT")
        default = {"http": "80", "https": "443"}.get(self.scheme)
        return f"{name}:{port}" if port and str(port) != default else str(name)

    def url_for(self, endpoint: str, *, _external: bool = False, **params: Any) -> str:
        """The URL of ``endpoint`` under ``SCRIPT_NAME`` (the root path); absolute if
        ``_external``.  ``".view"`` names a view of the request's own group."""
        if self._router is None:
            raise RuntimeError("this request was made without a router")
        if endpoint.startswith(".") and self.group is not None:
            endpoint = self.group + endpoint  # ".view": a view of this request's group
        url = self.script_root + self._router.build(endpoint, params)
        return f"{self.scheme}://{self.host}{url}" if _external else url

    # --- client ----------------------------------------------------------------------------

    @property
    def remote_addr(self) -> str | None:
        addr = self.environ.get("REMOTE_ADDR")
        return str(addr) if addr else None

    @property
    def remote_port(self) -> int | None:
        port = str(self.environ.get("REMOTE_PORT", ""))
        return int(port) if port.isdigit() else None

    # --- headers and cookies ---------------------------------------------------------------

    @cached_property
    def headers(self) -> Headers:
        """What the client sent, read-only (``ReadOnlyHeaders``): see its docstring why."""
        headers = Headers()
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                name = key.replace("_", "-").title()
            else:
                continue
            try:
                headers.add(name, value)
            except ValueError:
                continue  # a server bug, not the view's problem: drop the header
        return ReadOnlyHeaders(headers)

    @cached_property
    def cookies(self) -> dict[str, str]:
        cookies: dict[str, str] = {}
        for chunk in self.headers.get("Cookie", "").split(";"):
            name, equals, value = chunk.strip().partition("=")
            if not equals or not name.strip():
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            raw = value.encode("latin-1", "replace")
            cookies.setdefault(name.strip(), raw.decode("utf-8", "replace"))
        return cookies

    @cached_property
    def _content_type(self) -> tuple[str, dict[str, str]]:
        return parse_options_header(self.headers.get("Content-Type", ""))

    @property
    def mimetype(self) -> str:
        """The media type without parameters, lowercased, e.g. ``application/json``."""
        return self._content_type[0]

    @property
    def content_length(self) -> int | None:
        value = str(self.environ.get("CONTENT_LENGTH", "")).strip()
        if not value:
            return None
        if not value.isdigit() or not value.isascii():
            raise BadRequest("invalid Content-Length")
        return int(value)

    # --- body ------------------------------------------------------------------------------

    @cached_property
    def body(self) -> bytes:
        """The whole body; 413 beyond the application's limit, 400 if it is cut short."""
        return b"".join(self._input_chunks())

    def _input_chunks(self) -> Iterator[bytes]:
        """The body as read from ``wsgi.input``, checked against its length and the limit."""
        length = self.content_length
        if length is None and not self.environ.get("wsgi.input_terminated"):
            return
        if length is not None and length > self._max_body_size:
            raise HTTPError("Content Too Large", status=413)
        if self._input_read:
            raise RuntimeError("the body was already read (request.form streams it once)")
        self._input_read = True
        stream = self.environ["wsgi.input"]
        limit = self._max_body_size + 1 if length is None else length
        received = 0
        while received < limit:
            chunk = stream.read(min(_READ_CHUNK, limit - received))
            if not chunk:
                break
            received += len(chunk)
            if received > self._max_body_size:
                raise HTTPError("Content Too Large", status=413)
            yield chunk
        if length is not None and received < length:
            raise BadRequest("the body is shorter than its Content-Length")

    @property
    def text(self) -> str:
        """The body decoded with the Content-Type's charset (UTF-8 when none is given)."""
        charset = self._content_type[1].get("charset", "utf-8")
        try:
            return self.body.decode(charset)
        except LookupError as exc:
            raise BadRequest(f"unknown charset {charset!r}") from exc
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not valid {charset}") from exc

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; 400 when it is not valid JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise BadRequest("the body is not valid JSON") from exc

    @cached_property
    def _forms(self) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
        mimetype, params = self._content_type
        if mimetype == "application/x-www-form-urlencoded":
            return parse_urlencoded(self.body.decode("latin-1")), MultiDict()
        if mimetype == "multipart/form-data":
            # Streamed, so that large files go to disk instead of being held in memory twice.
            read = [self.body] if "body" in self.__dict__ else self._input_chunks()
            return parse_multipart(read, params.get("boundary", ""), self._spool_size)
        return MultiDict(), MultiDict()

    @property
    def form(self) -> MultiDict[str]:
        """Fields of an urlencoded or multipart body; empty for other content types."""
        return self._forms[0]

    @property
    def files(self) -> MultiDict[FileStorage]:
        """Files of a multipart body, by field name."""
        return self._forms[1]

    def close(self) -> None:
        """Release the uploaded files' temporary storage; the app calls it after each request."""
        forms = self.__dict__.get("_forms")
        if forms is not None:
            for _, upload in forms[1].multi_items():
                upload.close()
