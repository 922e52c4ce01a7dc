"""Files from disk: ``send_file`` and ``send_from_directory``, the view behind ``App.static``.

A file goes out as a ``FileSlice`` body, which the response hands to the server's
``wsgi.file_wrapper`` (kakehashi's server then uses ``sendfile``).  Each response carries
``Content-Type`` (from ``mimetypes``), ``ETag``, ``Last-Modified``, ``Cache-Control`` and
``Accept-Ranges``.  ``If-None-Match`` (or, without it, ``If-Modified-Since``) answers 304;
one ``bytes`` range answers 206, 416 when it starts past the end.  A ``Range`` with several
ranges, another unit or bad syntax is ignored (a full 200, as RFC 9110 allows), and so is
one whose ``If-Range`` does not match.

``send_from_directory`` refuses, with a 404 that says nothing more, any name with an empty,
``.`` or ``..`` segment (so also absolute names and the decoded ``%2e%2e``), a NUL or a
backslash, and any name that resolves (following symlinks) outside the directory.

This module must not register routes; ``Registry.static`` does.

Invariants: a file is opened once and checked with ``fstat`` on that descriptor (a FIFO or a
directory is refused without blocking); the descriptor is closed on every path that does not
hand it to the response.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from kakehashi.errors import HTTPError, NotFound

from .request import Request
from .response import FileSlice, Response

__all__ = ["safe_join", "send_file", "send_from_directory"]

_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")
_TEN_YEARS = 10 * 365 * 86400
# O_NONBLOCK (a FIFO must not hang the thread) and O_CLOEXEC are POSIX; O_BINARY is Windows'.
_OPEN_FLAGS = os.O_RDONLY | sum(getattr(os, n, 0) for n in ("O_NONBLOCK", "O_CLOEXEC", "O_BINARY"))


def safe_join(root: Path, filename: str) -> Path | None:
    """``root / filename`` if it stays inside the resolved ``root``, else ``None``."""
    if "\x00" in filename or "\\" in filename:
        return None
    if any(part in ("", ".", "..") for part in filename.split("/")):
        return None
    candidate = (root / filename).resolve()
    return candidate if candidate.is_relative_to(root) else None


def send_from_directory(
    req: Request, root: Path, filename: str, *, max_age: int | None = None
) -> Response:
    """The file ``filename`` under the resolved directory ``root``; 404 for anything else."""
    path = safe_join(root, filename)
    if path is None:
        raise NotFound()
    return send_file(req, path, max_age=max_age)


def send_file(req: Request, path: str | Path, *, max_age: int | None = None) -> Response:
    """The regular file at ``path``, with validators, conditional requests and ranges."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        raise NotFound() from None
    info = os.fstat(fd)  # of what was opened, so the check cannot race a rename
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotFound()
    file = open(fd, "rb")  # noqa: SIM115 -- the response owns it and closes it
    try:
        response = _file_response(req, file, info, Path(path).name, max_age)
    except BaseException:
        file.close()
        raise
    if not isinstance(response.body, FileSlice):
        file.close()
    return response


def _file_response(
    req: Request, file: BinaryIO, info: os.stat_result, name: str, max_age: int | None
) -> Response:
    size, mtime = info.st_size, int(info.st_mtime)
    etag = f'"{size:x}-{info.st_mtime_ns:x}"'
    cache = "no-cache" if max_age is None else f"public, max-age={min(max_age, _TEN_YEARS)}"
    headers = [
        ("ETag", etag),
        ("Last-Modified", email.utils.formatdate(mtime, usegmt=True)),
        ("Cache-Control", cache),
        ("Accept-Ranges", "bytes"),
    ]
    if _not_modified(req, etag, mtime):
        return Response(b"", 304, headers)
    content_type = _content_type(name)
    span = _requested_range(req, etag, mtime, size)
    if span is None:
        return Response(FileSlice(file, 0, size), 200, headers, content_type)
    start, end = span
    headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    body = FileSlice(file, start, end - start + 1)
    return Response(body, 206, headers, content_type)


def _content_type(name: str) -> str:
    kind, encoding = mimetypes.guess_type(name, strict=False)
    if kind is None or encoding is not None:
        # A .gz guessed as "its content, gzip-encoded" must not be labelled as its content.
        return "application/octet-stream"
    return kind + "; charset=utf-8" if kind.startswith("text/") else kind


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()]


def _not_modified(req: Request, etag: str, mtime: int) -> bool:
    if req.method not in ("GET", "HEAD"):
        return False
    if_none_match = req.headers.get("If-None-Match")
    if if_none_match is not None:  # when present, If-Modified-Since is ignored (RFC 9110)
        tags = _etags(if_none_match)
        return "*" in tags or etag in tags
    since = _http_date(req.headers.get("If-Modified-Since"))
    return since is not None and mtime <= since


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _requested_range(req: Request, etag: str, mtime: int, size: int) -> tuple[int, int] | None:
    """The one byte range to send, ``None`` for the whole file; 416 when unsatisfiable."""
    value = req.headers.get("Range")
    if value is None or req.method not in ("GET", "HEAD"):
        return None
    if_range = req.headers.get("If-Range")
    if if_range is not None and not _if_range_holds(if_range.strip(), etag, mtime):
        return None
    found = _RANGE.fullmatch(value.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = found.group(1), found.group(2)
    if first:
        start, end = int(first), int(last) if last else size - 1
        if last and end < start:
            return None  # syntactically invalid: ignored, not refused
    else:
        start, end = max(0, size - int(last)), size - 1
    if start >= size or end < start:  # past the end, an empty file, or a zero-length suffix
        raise HTTPError(
            "Range Not Satisfiable", status=416, headers=[("Content-Range", f"bytes */{size}")]
        )
    return start, min(end, size - 1)


def _if_range_holds(value: str, etag: str, mtime: int) -> bool:
    if value.startswith(('"', "W/")):
        return value == etag  # strong comparison: a weak tag never matches
    return _http_date(value) == mtime
