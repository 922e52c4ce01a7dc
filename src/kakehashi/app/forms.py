"""Parsers for what clients put in query strings and bodies: urlencoded and multipart forms.

Every function takes bytes (or a latin-1 string standing for bytes, as PEP 3333 hands them
over) and returns decoded text; anything malformed raises ``BadRequest`` with a short reason,
never another exception, so a hostile body cannot turn into a 500.

This module must not read from a socket or an environ; the request does that and calls here.

Invariants: text is decoded as UTF-8, strictly; file contents are left as bytes untouched.
"""

from __future__ import annotations

import codecs
import re
import urllib.parse

from kakehashi.errors import BadRequest

from .datastructures import FileStorage, MultiDict

__all__ = ["parse_multipart", "parse_options_header", "parse_urlencoded"]

_PARAM = re.compile(r';\s*(?P<key>[^\s;=]+)\s*(?:=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^;]*))?')
_MAX_FIELDS = 10_000


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


def parse_multipart(body: bytes, boundary: str) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
    """A ``multipart/form-data`` body as (fields, files)."""
    if not 1 <= len(boundary) <= 200 or not boundary.isascii():
        raise BadRequest("multipart boundary is missing or invalid")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise BadRequest("multipart body does not contain its boundary")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return MultiDict(fields), MultiDict(files)
        padding, newline, part = chunk.partition(b"\r\n")
        if not newline or padding.strip(b" \t"):
            raise BadRequest("multipart boundary line is malformed")
        _parse_part(part, fields, files)
    raise BadRequest("multipart body is not closed")


def _parse_part(
    part: bytes, fields: list[tuple[str, str]], files: list[tuple[str, FileStorage]]
) -> None:
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise BadRequest("multipart part has no end of headers")
    headers = _part_headers(head)
    disposition, params = parse_options_header(headers.get("content-disposition", ""))
    name = params.get("name")
    if disposition != "form-data" or name is None:
        raise BadRequest("multipart part has no form-data name")
    if "filename" in params:
        content_type = headers.get("content-type", "application/octet-stream")
        files.append((name, FileStorage(name, params["filename"], content_type, content)))
        return
    try:
        fields.append((name, content.decode("utf-8")))
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
