"""Parsers for what clients put in query strings and bodies: urlencoded and multipart forms.

Every function takes bytes (or a latin-1 string standing for bytes, as PEP 3333 hands them
over) and returns decoded text; anything malformed raises ``BadRequest`` with a short reason,
never another exception, so a hostile body cannot turn into a 500.

This module must not read from a socket or an environ; the request does that and calls here
with the body's chunks.

Invariants: text is decoded as UTF-8, strictly; file contents are left as bytes untouched.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator

from kakehashi.errors import BadRequest

from .datastructures import FileStorage, MultiDict

__all__ = ["parse_multipart", "parse_options_header", "parse_urlencoded"]

_PARAM = re.compile(r';\s*(?P<key>[^\s;=]+)\s*(?:=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^;]*))?')
_MAX_FIELDS = 10_000
_MAX_LINE = 1024  # transport padding after a boundary
_MAX_HEAD = 16 * 1024  # one part's header block


def parse_urlencoded(raw: str) -> MultiDict[str]:
    """``a=1&b=%E5%A4%AA`` as a multi-dict; ``raw`` is bytes spelled as latin-1 text."""
    try:
        pairs = urllib.parse.parse_qsl(
            raw, keep_blank_values=True, encoding="latin-1", max_num_fields=_MAX_FIELDS
        )
        return MultiDict((_utf8(k), _utf8(v)) for k, v in pairs)
    except UnicodeError as exc:
        raise BadRequest("form or query is not valid UTF-8") from exc
    except ValueError as exc:
        raise BadRequest(f"form or query: {exc}") from exc


def _utf8(latin1: str) -> str:
    return latin1.encode("latin-1").decode("utf-8")


def parse_options_header(value: str) -> tuple[str, dict[str, str]]:
    """``text/html; charset="utf-8"`` as ``("text/html", {"charset": "utf-8"})``.

    Parameter names are lowercased; RFC 5987 ``name*=UTF-8''...`` values win over plain ones.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for found in _PARAM.finditer(";" + rest):
        key, raw = found["key"].lower(), (found["value"] or "").strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if not key.endswith("*"):
            params.setdefault(key, raw)
            continue
        charset, _, tail = raw.partition("'")
        encoded = tail.partition("'")[2]
        try:
            codec = codecs.lookup(charset or "utf-8").name
            params[key[:-1]] = urllib.parse.unquote(encoded, encoding=codec, errors="strict")
        except (LookupError, UnicodeError):
            continue
    return main.strip().lower(), params


def parse_multipart(
    chunks: Iterable[bytes], boundary: str, spool_size: int
) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
    """A ``multipart/form-data`` body, read chunk by chunk, as (fields, files).

    Each file goes to a ``SpooledTemporaryFile``: in memory up to ``spool_size`` bytes, on
    disk beyond.  Field values are kept in memory (the body's size limit bounds them).
    """
    if not 1 <= len(boundary) <= 200 or not boundary.isascii():
        raise BadRequest("multipart boundary is missing or invalid")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    scan = _Scanner(iter(chunks), b"\r\n")
    if not scan.until(delimiter, _discard):
        raise BadRequest("multipart body does not contain its boundary")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    try:
        while not scan.startswith(b"--"):
            padding = scan.capped(b"\r\n", _MAX_LINE, "multipart boundary line is malformed")
            if padding.strip(b" \t"):
                raise BadRequest("multipart boundary line is malformed")
            if len(fields) + len(files) >= _MAX_FIELDS:
                raise BadRequest(f"multipart body has more than {_MAX_FIELDS} parts")
            _read_part(scan, delimiter, spool_size, fields, files)
        scan.drain()  # the epilogue, read so that a short body is still noticed
    except BaseException:
        for _, upload in files:
            upload.close()
        raise
    return MultiDict(fields), MultiDict(files)


def _discard(data: bytes) -> None:
    return None


class _Scanner:
    """A buffer over an iterator of chunks that finds delimiters split across chunks."""

    def __init__(self, chunks: Iterator[bytes], initial: bytes) -> None:
        self._chunks = chunks
        self.buf = bytearray(initial)

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self.buf += chunk
                return True
        return False

    def startswith(self, prefix: bytes) -> bool:
        while len(self.buf) < len(prefix) and self._more():
            pass
        return self.buf.startswith(prefix)

    def until(self, delimiter: bytes, sink: Callable[[bytes], object]) -> bool:
        """Feed ``sink`` what comes before ``delimiter`` and drop both; False at the end."""
        keep = len(delimiter) - 1
        while True:
            at = self.buf.find(delimiter)
            if at >= 0:
                sink(bytes(self.buf[:at]))
                del self.buf[: at + len(delimiter)]
                return True
            if len(self.buf) > keep:  # what cannot be the start of a delimiter goes out now
                cut = len(self.buf) - keep
                sink(bytes(self.buf[:cut]))
                del self.buf[:cut]
            if not self._more():
                return False

    def capped(self, delimiter: bytes, limit: int, error: str) -> bytes:
        """What comes before ``delimiter``, at most ``limit`` bytes; ``BadRequest(error)``."""
        out = bytearray()

        def collect(data: bytes) -> None:
            out.extend(data)
            if len(out) > limit:
                raise BadRequest(error)

        if not self.until(delimiter, collect):
            raise BadRequest(error)
        return bytes(out)

    def drain(self) -> None:
        for _ in self._chunks:
            pass


def _read_part(
    scan: _Scanner,
    delimiter: bytes,
    spool_size: int,
    fields: list[tuple[str, str]],
    files: list[tuple[str, FileStorage]],
) -> None:
    if scan.startswith(b"\r\n"):
        head = b""
        del scan.buf[:2]
    else:
        head = scan.capped(b"\r\n\r\n", _MAX_HEAD, "multipart part has no end of headers")
    headers = _part_headers(head)
    disposition, params = parse_options_header(headers.get("content-disposition", ""))
    name = params.get("name")
    if disposition != "form-data" or name is None:
        raise BadRequest("multipart part has no form-data name")
    if "filename" in params:
        content_type = headers.get("content-type", "application/octet-stream")
        spool = tempfile.SpooledTemporaryFile(max_size=spool_size)  # noqa: SIM115
        upload = FileStorage(name, params["filename"], content_type, spool)
        files.append((name, upload))  # closed by the caller if anything below fails
        if not scan.until(delimiter, spool.write):
            raise BadRequest("multipart body is not closed")
        spool.seek(0)
        return
    chunks: list[bytes] = []
    if not scan.until(delimiter, chunks.append):
        raise BadRequest("multipart body is not closed")
    try:
        fields.append((name, b"".join(chunks).decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"multipart field {name!r} is not valid UTF-8") from exc


def _part_headers(head: bytes) -> dict[str, str]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("multipart part headers are not valid UTF-8") from exc
    headers: dict[str, str] = {}
    for line in text.split("\r\n") if text else ():
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BadRequest("multipart part has a malformed header line")
        headers[name.strip().lower()] = value.strip()
    return headers
