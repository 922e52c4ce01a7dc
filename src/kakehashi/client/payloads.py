"""What ``params=``, ``data=``, ``json=`` and ``files=`` become on the wire.

What it does: appends query parameters to a URL; encodes a form as
``application/x-www-form-urlencoded``, a value as ``application/json``, and fields plus files as
``multipart/form-data`` (RFC 7578), each as a :class:`~kakehashi.client.models.PreparedBody`
with the Content-Type it needs.

What it must not do: send anything, or read a whole file into memory: a file part is streamed
from the file when the body is sent, and its size (when it is a regular file) gives the
Content-Length.

Invariants:
    * At most one of ``body``, ``data``, ``json`` may be given (``files`` goes with ``data``).
    * A multipart boundary is random and never appears in a part given as bytes; a part's
      name and file name never carry CR, LF or a double quote unescaped.
"""

from __future__ import annotations

import json as jsonlib
import mimetypes
import os
import secrets
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from kakehashi.client.models import Body, PreparedBody, file_length, prepare_body

__all__ = [
    "FileInput",
    "FilesInput",
    "FormInput",
    "ParamsInput",
    "Payload",
    "add_params",
    "encode_payload",
]

Scalar = str | int | float | bool
ParamsInput = Mapping[str, Scalar | Iterable[Scalar]] | Iterable[tuple[str, Scalar]] | None
FormInput = ParamsInput
FileContent = bytes | str | BinaryIO
FileInput = FileContent | tuple[str, FileContent] | tuple[str, FileContent, str]
FilesInput = Mapping[str, FileInput] | Iterable[tuple[str, FileInput]] | None

_CHUNK = 64 * 1024
_ESCAPE_NAME = {"\r": "%0D", "\n": "%0A", '"': "%22"}  # as browsers do (WHATWG, RFC 7578 §2)


@dataclass(slots=True)
class Payload:
    """A body and the Content-Type that describes it (None: leave Content-Type alone)."""

    body: PreparedBody | None
    content_type: str | None = None


def _pairs(values: ParamsInput) -> list[tuple[str, str]]:
    """``{"a": 1, "b": [2, 3]}`` or pairs as ``[("a", "1"), ("b", "2"), ("b", "3")]``."""
    if values is None:
        return []
    items = values.items() if isinstance(values, Mapping) else values
    out: list[tuple[str, str]] = []
    for key, value in items:
        many = value if isinstance(value, list | tuple) else [value]
        out.extend((str(key), _scalar(v)) for v in many)
    return out


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise TypeError(f"a parameter value must be str, int, float or bool, not {value!r}")
    return str(value)


def add_params(url: str, params: ParamsInput) -> str:
    """``url`` with ``params`` appended to its query (after any query it already has)."""
    encoded = urllib.parse.urlencode(_pairs(params))
    if not encoded:
        return url
    base, hash_, fragment = url.partition("#")
    sep = "&" if "?" in base and not base.endswith(("?", "&")) else ("" if "?" in base else "?")
    return base + sep + encoded + hash_ + fragment


def encode_payload(
    body: Body = None, data: FormInput = None, json: Any = None, files: FilesInput = None
) -> Payload:
    """The body to send for these arguments, with its Content-Type.

    Raises:
        ValueError: more than one of ``body``, ``data``, ``json`` (or ``files`` with ``body``
            or ``json``).
        TypeError: a value of a type that cannot be encoded.
    """
    given = [n for n, v in (("body", body), ("data", data), ("json", json)) if v is not None]
    if files is not None:
        given = [n for n in given if n != "data"] + ["files"]
    if len(given) > 1:
        raise ValueError(f"give only one of {' and '.join(given)} (files= goes with data=)")
    if files is not None:
        return _multipart(_pairs(data), _file_pairs(files))
    if data is not None:
        if isinstance(data, str | bytes):
            raise TypeError("data= is a form (a mapping or pairs); send raw bytes as body=")
        form = urllib.parse.urlencode(_pairs(data)).encode("ascii")
        return Payload(prepare_body(form), "application/x-www-form-urlencoded")
    if json is not None:
        text = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"))
        return Payload(prepare_body(text.encode("utf-8")), "application/json")
    return Payload(prepare_body(body))


def _file_pairs(files: FilesInput) -> list[tuple[str, FileInput]]:
    if files is None:
        return []
    return list(files.items() if isinstance(files, Mapping) else files)


@dataclass(slots=True)
class _Part:
    head: bytes
    content: bytes | BinaryIO
    length: int | None


def _quote(value: str) -> str:
    for char, escaped in _ESCAPE_NAME.items():
        value = value.replace(char, escaped)
    return value


def _file_part(name: str, spec: FileInput) -> _Part:
    if isinstance(spec, tuple):
        filename, content = spec[0], spec[1]
        ctype = spec[2] if len(spec) == 3 else None
    else:
        content = spec
        filename = os.path.basename(str(getattr(spec, "name", "") or name))
        ctype = None
    ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    disposition = f'form-data; name="{_quote(name)}"; filename="{_quote(filename)}"'
    head = f"Content-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n"
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, bytes | bytearray):
        return _Part(head.encode("utf-8"), bytes(content), len(content))
    return _Part(head.encode("utf-8"), content, file_length(content))


def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, FileInput]]) -> Payload:
    parts = [
        _Part(
            f'Content-Disposition: form-data; name="{_quote(k)}"\r\n\r\n'.encode(),
            v.encode("utf-8"),
            len(v.encode("utf-8")),
        )
        for k, v in fields
    ]
    parts += [_file_part(name, spec) for name, spec in files]
    boundary = _boundary(parts)
    delimiter = b"--" + boundary.encode("ascii")
    sizes = [p.length for p in parts]
    length: int | None = None
    if all(s is not None for s in sizes):
        framing = sum(len(delimiter) + 2 + len(p.head) + 2 for p in parts) + len(delimiter) + 4
        length = framing + sum(s for s in sizes if s is not None)

    def chunks() -> Iterator[bytes]:
        for part in parts:
            yield delimiter + b"\r\n" + part.head
            if isinstance(part.content, bytes):
                yield part.content
            else:
                while block := part.content.read(_CHUNK):
                    yield block.encode("utf-8") if isinstance(block, str) else block
            yield b"\r\n"
        yield delimiter + b"--\r\n"

    replay = b"".join(chunks()) if all(isinstance(p.content, bytes) for p in parts) else None
    body = PreparedBody(chunks, length, replay)
    return Payload(body, f"multipart/form-data; boundary={boundary}")


def _boundary(parts: list[_Part]) -> str:
    for _ in range(10):
        boundary = "kakehashi-" + secrets.token_hex(16)
        mark = boundary.encode("ascii")
        if not any(isinstance(p.content, bytes) and mark in p.content for p in parts):
            return boundary
    raise RuntimeError("no multipart boundary absent from the parts")  # 2**-128 per try
