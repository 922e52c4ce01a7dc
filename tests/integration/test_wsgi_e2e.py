"""PEP 3333 through the real server: environ, wsgi.input, file_wrapper, write(), exc_info,
close(), and applications that misuse the API."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import sys
import threading
import wsgiref.validate
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.errors import LocalProtocolError
from tests.conftest import StartServer, addr
from tests.wire import Reader, connect, exchange, get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

REQUIRED_KEYS = {
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
    "SERVER_PORT", "SERVER_PROTOCOL", "wsgi.version", "wsgi.url_scheme", "wsgi.input",
    "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
}  # fmt: skip


class Capture:
    """An app that records its environ (and what it read) and answers 200."""

    def __init__(self, read: str = "read") -> None:
        self.environ: dict[str, Any] = {}
        self.body: Any = None
        self.bodies: dict[str, Any] = {}
        self.read = read

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environ = environ
        stream = environ["wsgi.input"]
        if self.read == "read":
            self.body = stream.read()
        elif self.read == "lines":
            self.body = (stream.readline(), stream.readline(3), stream.readlines())
        elif self.read == "iter":
            self.body = list(stream)
        elif self.read == "sized":
            self.body = [stream.read(4), stream.read(0), stream.read(100), stream.read(1)]
        self.bodies[environ["PATH_INFO"]] = self.body
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def test_environ_has_every_required_key(start_server: StartServer) -> None:
    app = Capture()
    server = start_server(app)
    resp = get(addr(server), "/a/b?x=1&y=%20", "Content-Type: text/x\r\nX-Thing: 1\r\n")
    assert resp.status == 200
    env = app.environ
    assert env.keys() >= REQUIRED_KEYS
    host, port = addr(server).rsplit(":", 1)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (host, port)
    assert env["REQUEST_METHOD"] == "GET"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/a/b")
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["CONTENT_TYPE"] == "text/x"
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_X_THING"] == "1"
    assert env["HTTP_HOST"] == "test"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert all(type(v) is str for k, v in env.items() if k.isupper())
    env["wsgi.errors"].write("a line for wsgi.errors\n")
    env["wsgi.errors"].flush()


def test_path_info_is_latin1_decoded_bytes(start_server: StartServer) -> None:
    app = Capture()
    server = start_server(app)
    assert get(addr(server), "/greeting/%E5%A4%AA%E9%83%8E").status == 200
    path = app.environ["PATH_INFO"]
    assert path.encode("latin-1").decode("utf-8") == "/greeting/太郎"
    assert app.environ["RAW_URI"] == "/greeting/%E5%A4%AA%E9%83%8E"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("read", b"line1\nline2\nend"),
        ("lines", (b"line1\n", b"lin", [b"e2\n", b"end"])),
        ("iter", [b"line1\n", b"line2\n", b"end"]),
        ("sized", [b"line", b"", b"1\nline2\nend", b""]),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked", "big-length"])
def test_wsgi_input_reads_exactly_the_body(
    start_server: StartServer, mode: str, expected: Any, framing: str
) -> None:
    app = Capture(mode)
    # buffer_body_size=4 makes the Content-Length body stream too ("big-length")
    server = start_server(app, buffer_body_size=4 if framing == "big-length" else 1 << 20)
    body = b"line1\nline2\nend"
    if framing == "chunked":
        framed = (
            b"Transfer-Encoding: chunked\r\n\r\n6\r\nline1\n\r\n9;x=y\r\nline2\nend\r\n0\r\n\r\n"
        )
    else:
        framed = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    request = b"POST /x HTTP/1.1\r\nHost: x\r\n" + framed
    nxt = b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    first, second = exchange(addr(server), request + nxt, count=2)
    assert app.bodies["/x"] == expected
    assert app.environ["PATH_INFO"] == "/next"  # the next request was not eaten by the body
    assert (first.status, second.status) == (200, 200)
    if framing == "chunked":
        assert "CONTENT_LENGTH" not in app.environ or app.environ["CONTENT_LENGTH"] == ""


def test_file_wrapper_uses_sendfile_and_sends_the_right_bytes(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    calls = []
    real_sendfile = os.sendfile

    def spy(*args: Any) -> int:
        calls.append(args)
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    closed = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        f = open(path, "rb")  # noqa: SIM115 - closed by the wrapper's close()
        f.seek(int(environ["QUERY_STRING"] or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapper = environ["wsgi.file_wrapper"](f, 8192)
        real_close = wrapper.close
        wrapper.close = lambda: (closed.append(1), real_close())
        return wrapper

    server = start_server(app)
    with connect(addr(server)) as sock:
        reader = Reader(sock)
        for offset in (0, 1000):
            sock.sendall(b"GET /?%d HTTP/1.1\r\nHost: x\r\n\r\n" % offset)
            resp = reader.read_response()
            assert resp.header("content-length") == str(len(data) - offset)
            assert resp.body == data[offset:]
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = reader.read_response(head_request=True)
        assert head.header("content-length") == str(len(data))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read_response().body == data
    assert calls, "os.sendfile was not used"
    assert wait_until(lambda: len(closed) == 4, 2)  # close() runs just after the send


def test_file_wrapper_over_a_non_file_is_iterated(start_server: StartServer) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"abc" * 10000), 1000)

    server = start_server(app)
    resp = get(addr(server))
    assert resp.body == b"abc" * 10000


def test_write_callable(start_server: StartServer) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"from write, ")
        yield b"then iterated"

    server = start_server(app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        reader = Reader(sock)
        for _ in range(2):
            assert reader.read_response().body == b"from write, then iterated"


def test_exc_info_before_headers_replaces_the_response(start_server: StartServer) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("503 Busy", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    server = start_server(app)
    resp = get(addr(server))
    assert (resp.status, resp.reason, resp.body) == (503, "Busy", b"sorry")


def test_exc_info_after_headers_reraises_and_aborts(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        if environ["PATH_INFO"] != "/late":
            return
        try:
            raise ValueError("late")
        except ValueError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except ValueError as exc:
                seen.append(exc)
                raise

    server = start_server(app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        with pytest.raises(EOFError):
            reader.read_response()  # chunked body cut short: never a wrong response
    assert seen and str(seen[0]) == "late"
    assert get(addr(server)).status == 200


class Tracked:
    """An iterable whose close() is recorded."""

    def __init__(self, chunks: list[Any], fail_at: int = -1) -> None:
        self.chunks, self.fail_at, self.closed = chunks, fail_at, threading.Event()

    def __iter__(self) -> Iterator[Any]:
        for n, chunk in enumerate(self.chunks):
            if n == self.fail_at:
                raise RuntimeError("app failed mid-body")
            yield chunk

    def close(self) -> None:
        self.closed.set()


def test_close_is_always_called(start_server: StartServer) -> None:
    made: list[Tracked] = []

    def app(environ: dict[str, Any], start_response: Any) -> Tracked:
        start_response("200 OK", [("Content-Type", "text/plain")])
        mode = environ["QUERY_STRING"]
        it = Tracked([b"x" * 1000] * 3, fail_at=1 if mode == "fail" else -1)
        if mode == "str":
            it = Tracked(["not bytes"])
        made.append(it)
        return it

    server = start_server(app)
    assert get(addr(server), "/?ok").body == b"x" * 3000
    assert get(addr(server), "/?str").status == 500
    with pytest.raises(EOFError):
        get(addr(server), "/?fail")
    assert len(made) == 3
    assert all(it.closed.wait(2) for it in made)


def test_close_is_called_when_the_client_disconnects(start_server: StartServer) -> None:
    closed = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen() -> Iterator[bytes]:
            try:
                while True:
                    yield b"y" * 65536
            finally:
                closed.set()

        return gen()

    server = start_server(app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert closed.wait(5)


def _misuse(kind: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        headers = [("Content-Type", "text/plain")]
        if kind == "raises":
            raise RuntimeError("app bug")
        if kind == "str-body":
            start_response("200 OK", headers)
            return ["text"]
        if kind == "str-yield":
            start_response("200 OK", headers)
            return iter(["text"])
        if kind == "bad-status":
            start_response("OK", headers)
        elif kind == "int-status":
            start_response(200, headers)
        elif kind == "headers-tuple":
            start_response("200 OK", tuple(headers))
        elif kind == "crlf":
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")])
        elif kind == "hop-by-hop":
            start_response("200 OK", [("Transfer-Encoding", "chunked")])
        elif kind == "twice":
            start_response("200 OK", headers)
            start_response("200 OK", headers)
        elif kind == "no-start":
            return [b"body"]
        return [b"body"]

    return app


@pytest.mark.parametrize(
    "kind",
    ["raises", "str-body", "str-yield", "bad-status", "int-status", "headers-tuple", "crlf",
     "hop-by-hop", "twice", "no-start"],
)  # fmt: skip
def test_app_misuse_gets_500_and_the_server_goes_on(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    server = start_server(_misuse(kind))
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 500
        assert resp.header("connection") == "close"
        assert b"Set-Cookie" not in resp.raw_head
        assert reader.closed()
    assert "error in application" in caplog.text
    # and the next connection is served (the server is still up)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(sock).read_response().status == 500  # the same broken app, answered


def test_tracebacks_hidden_unless_exposed(start_server: StartServer) -> None:
    hidden = start_server(_misuse("raises"))
    shown = start_server(_misuse("raises"), expose_tracebacks=True)
    assert b"app bug" not in get(addr(hidden)).body
    assert b"RuntimeError: app bug" in get(addr(shown)).body


def test_validator_wrapped_app(start_server: StartServer) -> None:
    def inner(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        stream = environ["wsgi.input"]
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        line = stream.readline()
        assert line == b""
        environ["wsgi.errors"].write("validated\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"got:" + body

    server = start_server(wsgiref.validate.validator(inner))
    where = addr(server)
    with connect(where) as sock:
        sock.sendall(
            b"GET /v?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 4\r\n\r\nabcd"
            b"HEAD /v HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.read_response().body == b"got:"
        assert reader.read_response().body == b"got:abcd"
        assert reader.read_response(head_request=True).status == 200


def test_library_never_configures_logging(start_server: StartServer) -> None:
    root_handlers = list(logging.getLogger().handlers)
    server = start_server()
    assert get(addr(server)).status == 200
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger("kakehashi").handlers == []


def test_access_log_line(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    server = start_server()
    get(addr(server), "/p?q=1", "Referer: http://r/\r\nUser-Agent: ua/1\r\n")

    def lines() -> list[str]:  # logged just after the response went out
        return [r.getMessage() for r in caplog.records if r.name == "kakehashi.access"]

    assert wait_until(lines, 2)
    found = lines()
    assert len(found) == 1
    pattern = (
        r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /p\?q=1 HTTP/1\.1" 200 12 "http://r/" "ua/1" \d+'
    )
    assert re.fullmatch(pattern, found[0]), found[0]


def test_access_log_can_be_turned_off(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    server = start_server(access_log=False)
    get(addr(server))
    assert not [r for r in caplog.records if r.name == "kakehashi.access"]


def test_a_write_kept_past_the_response_is_refused(start_server: StartServer) -> None:
    # A write() the application keeps (its own, or the one start_response returns) and calls
    # after its response ended must not put bytes into the connection's next response.
    kept: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        kept.append(start_response("200 OK", [("Content-Length", "2")]))
        return [b"ok"]

    server = start_server(app)
    with connect(addr(server)) as sock:
        reader = Reader(sock)
        # The client can read a response before the server's thread has finished the
        # request; a second response on the same connection proves the first one ended.
        for target in (b"/1", b"/2"):
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.read_response().body == b"ok"
        with pytest.raises(LocalProtocolError, match="after the response ended"):
            kept[0](b"injected")
        sock.sendall(b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        third = reader.read_response()
        assert (third.status, third.body) == (200, b"ok")
