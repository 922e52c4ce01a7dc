"""An in-process test client: calls a WSGI application directly, no sockets, no threads.

``Client(app).get("/greeting/太郎")`` builds the environ a PEP 3333 server would (the target is
percent-encoded as a browser would, then ``PATH_INFO`` is its decoded bytes as latin-1), runs
the application, drains and closes its body, and returns a ``TestResponse``.  The client keeps
cookies the application sets, like a browser, and sends them back.

This module must not open sockets or depend on pytest; it works with any test runner.

Invariants: every iterable the application returns is closed; the raw target is also given
as ``REQUEST_URI`` so that malformed percent-encodings reach the application as sent.
"""

from __future__ import annotations

import io
import json as jsonlib
import os
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from wsgiref.validate import validator

from .datastructures import Headers

__all__ = ["Client", "TestResponse"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FileTuple = tuple[str, bytes] | tuple[str, bytes, str]
Upload = tuple[str, bytes, str]  # filename, content, content type
_OCTETS = "application/octet-stream"
# Characters a browser leaves alone in a target; "%" too, so tests can send malformed escapes.
_TARGET_SAFE = "/?&=%:@!$'()*+,;~#[]"


@dataclass
class TestResponse:
    """What the application answered.

    ``status`` is the code (``200``) and ``status_line`` the line (``"200 OK"``); Flask's
    names are here too: ``status_code`` is the code and ``data`` the body.  (Flask's
    ``status`` is the line: kakehashi's ``status`` stays the code, as it always was.)
    """

    __test__ = False  # not a pytest test class, despite the name

    status: int
    status_line: str
    headers: Headers
    body: bytes

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def data(self) -> bytes:
        return self.body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class Client:
    """Calls ``app`` in-process; ``validate`` wraps it in ``wsgiref.validate.validator``."""

    __test__ = False

    def __init__(
        self, app: WSGIApp, *, validate: bool = False, remote_addr: str = "127.0.0.1"
    ) -> None:
        self.app: WSGIApp = validator(app) if validate else app
        self.remote_addr = remote_addr
        self.cookies: dict[str, str] = {}

    def get(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", target, **kwargs)

    def head(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("HEAD", target, **kwargs)

    def options(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("OPTIONS", target, **kwargs)

    def post(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("POST", target, **kwargs)

    def put(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("PUT", target, **kwargs)

    def patch(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("PATCH", target, **kwargs)

    def delete(self, target: str, **kwargs: Any) -> TestResponse:
        return self.open("DELETE", target, **kwargs)

    def open(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        data: Mapping[str, Any] | bytes | str | None = None,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        files: Mapping[str, FileTuple] | None = None,
        environ: Mapping[str, Any] | None = None,
    ) -> TestResponse:
        """Send one request; ``data``, ``json`` and ``files`` build the body and its type.

        As in Flask, ``data`` is the raw body (``bytes`` or ``str``) or a mapping of form
        fields, sent urlencoded, or as multipart when a value is a file: a binary file object
        or a tuple ``(file object or bytes, filename[, content_type])``; a list value sends
        the field several times.  ``form`` is another name for a mapping ``data``.  ``files``
        maps names to ``(filename, bytes[, content_type])``.
        """
        header_map = {k.title(): v for k, v in (headers or {}).items()}
        body, content_type = _encode_body(body, form if data is None else data, json, files)
        if content_type and "Content-Type" not in header_map:
            header_map["Content-Type"] = content_type
        if self.cookies and "Cookie" not in header_map:
            header_map["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        env = self._environ(method, target, header_map, body)
        env.update(environ or {})
        response = self._run(env)
        self._remember_cookies(response.headers)
        return response

    def _environ(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        quoted = urllib.parse.quote(target, safe=_TARGET_SAFE)
        path, _, query = quoted.partition("?")
        env: dict[str, Any] = {
            "REQUEST_METHOD": method.upper(),
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.partition("#")[0],
            "REQUEST_URI": quoted,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
            "REMOTE_PORT": "50000",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if body:
            env["CONTENT_LENGTH"] = str(len(body))
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
        return env

    def _run(self, env: dict[str, Any]) -> TestResponse:
        started: list[tuple[str, list[tuple[str, str]]]] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            started.append((status, headers))
            return chunks.append

        result = self.app(env, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status_line, header_list = started[-1]
        return TestResponse(
            int(status_line[:3]), status_line, Headers(header_list), b"".join(chunks)
        )

    def _remember_cookies(self, headers: Headers) -> None:
        for line in headers.getall("Set-Cookie"):
            pair, *attributes = (part.strip() for part in line.split(";"))
            name, _, value = pair.partition("=")
            if any(a.lower().replace(" ", "") == "max-age=0" for a in attributes):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


def _encode_body(
    body: bytes,
    data: Mapping[str, Any] | bytes | str | None,
    json: Any,
    files: Mapping[str, FileTuple] | None,
) -> tuple[bytes, str | None]:
    if json is not None:
        return jsonlib.dumps(json).encode("utf-8"), "application/json"
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, bytes | bytearray):
        return bytes(data), None
    fields, uploads = _split_form(data or {})
    uploads.extend(
        (name, (spec[0], spec[1], spec[2] if len(spec) == 3 else _OCTETS))
        for name, spec in (files or {}).items()
    )
    if uploads:
        return _multipart(fields, uploads)
    if data is not None:
        return urllib.parse.urlencode(fields).encode("ascii"), "application/x-www-form-urlencoded"
    return body, None


def _split_form(data: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, Upload]]]:
    """Flask-style form data as plain fields and files."""
    fields: list[tuple[str, str]] = []
    uploads: list[tuple[str, Upload]] = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, tuple):
                content, filename, *kind = item
                raw = content.read() if hasattr(content, "read") else bytes(content)
                uploads.append((name, (filename, raw, kind[0] if kind else _OCTETS)))
            elif hasattr(item, "read"):
                filename = os.path.basename(str(getattr(item, "name", "file")))
                uploads.append((name, (filename, item.read(), _OCTETS)))
            else:
                fields.append((name, str(item)))
    return fields, uploads


def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, Upload]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode("utf-8") + b"\r\n")
    for name, (filename, data, kind) in files:
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        )
        out.write(head.encode("utf-8") + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"
