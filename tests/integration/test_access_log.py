"""The access log on the wire: every response gets one parseable line with the status and the
body bytes that really went out (issue 8, items 13-16), in every format; on both engines
where a test fits both (an ASGI twin of each application below)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.server.observe.logfile import LogFileHandler
from tests import wire
from tests.asgi_apps import read_body
from tests.conftest import StartServer, addr

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

Environ = dict[str, Any]
Scope = dict[str, Any]
StartEngine = Callable[..., Any]
QUOTED = r'"((?:[^"\\]|\\.)*)"'
# The default format, every field required: a line that does not match is not parseable.
LINE = re.compile(
    r"(?P<h>\S+) - (?P<u>\S+) \[(?P<t>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    rf"{QUOTED} (?P<s>\d{{3}}) (?P<b>\d+) {QUOTED} {QUOTED} (?P<D>\d+)"
)
CHUNK = 64 * 1024


class Lines:
    """The access lines logged so far, parsed; waits for them to appear."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def raw(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.name == "kakehashi.access"]

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        wire.wait_until(lambda: len(self.raw()) >= count, timeout)
        found = self.raw()
        assert len(found) == count, found
        return found

    def parsed(self, count: int = 1) -> list[dict[str, str]]:
        out = []
        for line in self.wait(count):
            m = LINE.fullmatch(line)
            assert m is not None, f"not one parseable line: {line!r}"
            fields = m.groupdict()
            fields["r"], fields["f"], fields["a"] = m.group(4), m.group(7), m.group(8)
            out.append(fields)
        return out


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    return Lines(caplog)


# -- applications ------------------------------------------------------------------------------


def write_then_list(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"abc")
    return [b"defg"]


def write_then_generator(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"ab")
    yield b"cde"
    yield b"fghi"


def longer_than_declared(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "5")])
    return [b"0123456789"]


def failing(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    raise RuntimeError("boom")


def fails_after_head(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first part"
    raise RuntimeError("boom after the head")


def big_stream(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
    chunks = int(environ["QUERY_STRING"] or "128")
    start_response("200 OK", [("Content-Length", str(chunks * CHUNK))])
    for _ in range(chunks):
        yield b"x" * CHUNK


def reads_body(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def echo_headers(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    start_response("201 Created", [("Content-Length", "2"), ("X-Out", 'o"k')])
    return [b"ok"]


# The ASGI twins.


async def _start(send: Any, status: int = 200, headers: Any = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})


async def _body(send: Any, body: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def failing_asgi(scope: Scope, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


async def fails_after_head_asgi(scope: Scope, receive: Any, send: Any) -> None:
    await _start(send, 200, [(b"content-type", b"text/plain")])
    await _body(send, b"first part", more=True)
    raise RuntimeError("boom after the head")


async def big_stream_asgi(scope: Scope, receive: Any, send: Any) -> None:
    chunks = int(scope["query_string"] or b"128")
    await _start(send, 200, [(b"content-length", b"%d" % (chunks * CHUNK))])
    for number in range(chunks):
        await _body(send, b"x" * CHUNK, more=number < chunks - 1)


async def reads_body_asgi(scope: Scope, receive: Any, send: Any) -> None:
    body = await read_body(receive)
    await _start(send, 200, [(b"content-length", b"%d" % len(body))])
    await _body(send, body)


async def echo_headers_asgi(scope: Scope, receive: Any, send: Any) -> None:
    await _start(send, 201, [(b"content-length", b"2"), (b"x-out", b'o"k')])
    await _body(send, b"ok")


# -- item 13: the bytes that went out ----------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "body"),
    [(write_then_list, b"abcdefg"), (write_then_generator, b"abcdefghi")],
)
def test_bytes_count_write_and_iterable(
    start_server: StartServer, lines: Lines, app: Any, body: bytes
) -> None:
    response = wire.get(addr(start_server(app)))
    assert response.body == body
    assert lines.parsed()[0]["b"] == str(len(body))


def test_bytes_stop_at_the_declared_length(start_server: StartServer, lines: Lines) -> None:
    response = wire.get(addr(start_server(longer_than_declared)))
    assert response.body == b"01234"
    assert lines.parsed()[0]["b"] == "5"


def test_a_500_page_logs_its_bytes(start_engine: StartEngine, lines: Lines) -> None:
    response = wire.get(addr(start_engine(failing, failing_asgi)), "/explode")
    assert response.status == 500
    fields = lines.parsed()[0]
    assert (fields["s"], fields["b"]) == ("500", str(len(response.body)))
    assert int(fields["b"]) > 0


def test_head_logs_no_body_bytes(start_server: StartServer, lines: Lines) -> None:
    server = start_server(write_then_list)
    request = b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert wire.exchange(addr(server), request, head_request=True)[0].status == 200
    assert lines.parsed()[0]["b"] == "0"


def test_sendfile_bytes(start_server: StartServer, lines: Lines, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 100_000)

    def send_file(environ: Environ, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](path.open("rb"))

    assert len(wire.get(addr(start_server(send_file))).body) == 100_000
    assert lines.parsed()[0]["b"] == "100000"


def test_an_app_failing_after_its_head_logs_what_was_sent(
    start_engine: StartEngine, lines: Lines
) -> None:
    server = start_engine(fails_after_head, fails_after_head_asgi)
    with wire.connect(addr(server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = wire.Reader(sock).read_to_eof()
        except ConnectionResetError:  # uvloop: the cut dropped what was not flushed yet
            data = b""
    fields = lines.parsed()[0]
    went_out = len(b"first part") if b"first part" in data else 0
    assert (fields["s"], fields["b"]) == ("200", str(went_out))


# -- item 14: one request, one parseable line ---------------------------------------------------


def test_quotes_and_control_characters_are_escaped(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine()
    request = (
        b"GET /a%22b?q=\xe9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b'User-Agent: evil" 200 0 "-" "fake\\ \xff\r\n'
        b'Referer: http://r/"quoted"\t\x80\r\n\r\n'
    )
    assert wire.exchange(addr(server), request)[0].status == 200
    (line,) = lines.wait()
    fields = lines.parsed()[0]
    assert fields["r"] == r"GET /a%22b?q=\xe9 HTTP/1.1"
    assert fields["a"] == r"evil\" 200 0 \"-\" \"fake\\ \xff"
    assert fields["f"] == r"http://r/\"quoted\"\x09\x80"
    assert line.isascii() and line.isprintable()


def test_values_set_by_middleware_are_escaped_too(start_server: StartServer, lines: Lines) -> None:
    def proxy_fix(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        # As ProxyFix and method-override middleware do: environ values from client headers.
        environ["REMOTE_ADDR"] = environ["HTTP_X_FORWARDED_FOR"]
        environ["REQUEST_METHOD"] = environ["HTTP_X_HTTP_METHOD_OVERRIDE"]
        return write_then_list(environ, start_response)

    extra = 'X-Forwarded-For: 1.2.3.4 "x"\r\nX-HTTP-Method-Override: PUT "y"\r\n'
    wire.get(addr(start_server(proxy_fix)), "/mw", extra)
    fields = lines.parsed()[0]
    assert fields["h"] == r"1.2.3.4\x20\"x\"" or fields["h"] == r"1.2.3.4 \"x\""
    assert fields["r"] == r"PUT \"y\" /mw HTTP/1.1"


def test_a_refused_request_line_is_escaped(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine()
    response = wire.exchange(addr(server), b'GET /\x01"x HTTP/1.1\r\nHost: x\r\n\r\n')[0]
    assert response.status == 400
    fields = lines.parsed()[0]
    assert (fields["r"], fields["s"]) == (r"GET /\x01\"x HTTP/1.1", "400")


# -- item 15: refused at the protocol level, cut off -------------------------------------------


REFUSALS = [
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", {}, 400, "GET / HTTP/1.1"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", {}, 505, "GET / HTTP/9.9"),
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", {"limit_request_line": 100}, 414, "-"),
    (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10)) + b"\r\n",
        {"limit_request_fields": 5},
        431,
        "GET / HTTP/1.1",
    ),
    (
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        {"max_body_size": 100},
        413,
        "POST /up HTTP/1.1",
    ),
]


@pytest.mark.parametrize(("request_bytes", "settings", "status", "request_line"), REFUSALS)
def test_protocol_refusals_get_a_line(
    start_engine: StartEngine,
    lines: Lines,
    request_bytes: bytes,
    settings: dict[str, int],
    status: int,
    request_line: str,
) -> None:
    server = start_engine(**settings)
    response = wire.exchange(addr(server), request_bytes)[0]
    assert response.status == status
    fields = lines.parsed()[0]
    assert fields["s"] == str(status)
    assert fields["b"] == str(len(response.body))
    assert fields["r"] == request_line
    assert (fields["u"], fields["f"], fields["a"]) == ("-", "-", "-")


def test_head_timeout_408_gets_a_line(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(header_timeout=0.3)
    with wire.connect(addr(server)) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        assert wire.Reader(sock).read_response().status == 408
    fields = lines.parsed()[0]
    assert (fields["s"], fields["r"]) == ("408", "GET /slow HTTP/1.1")
    assert int(fields["b"]) > 0


def test_body_timeout_408_gets_a_line(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(reads_body, reads_body_asgi, body_timeout=0.3)
    with wire.connect(addr(server)) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert wire.Reader(sock).read_response().status == 408
    assert lines.parsed()[0]["r"] == "POST /up HTTP/1.1"


def test_a_broken_chunked_body_gets_a_line(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(reads_body, reads_body_asgi)
    request = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    response = wire.exchange(addr(server), request)[0]
    assert response.status == 400
    fields = lines.parsed()[0]
    assert (fields["r"], fields["s"], fields["b"]) == (
        "POST /c HTTP/1.1",
        "400",
        str(len(response.body)),
    )


def _stalled_client(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, _, port = address.rpartition(":")
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def test_send_timeout_logs_the_bytes_that_went_out(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(big_stream, big_stream_asgi, send_timeout=0.5)
    total = 128 * CHUNK
    with _stalled_client(addr(server)) as sock:
        sock.sendall(b"GET /?128 HTTP/1.1\r\nHost: x\r\n\r\n")
        fields = lines.parsed()[0]  # logged once the server gave up on the reader
        data = wire.Reader(sock).read_to_eof()  # what the kernel still delivers
    received = len(data) - data.index(b"\r\n\r\n") - 4
    logged = int(fields["b"])
    assert fields["s"] == "200"
    assert 0 < received < total
    # Only whole pieces handed to the kernel are counted: the last one may be partly out.
    assert logged <= received <= logged + CHUNK


def test_client_disconnect_logs_the_bytes_that_went_out(
    start_engine: StartEngine, lines: Lines
) -> None:
    server = start_engine(big_stream, big_stream_asgi)
    total = 128 * CHUNK
    with _stalled_client(addr(server)) as sock:
        sock.sendall(b"GET /?128 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = len(sock.recv(4096))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    fields = lines.parsed()[0]  # the reset makes the next send fail
    assert fields["s"] == "200"
    assert got - 200 <= int(fields["b"]) < total


def test_a_client_gone_before_any_head_logs_499(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(reads_body, reads_body_asgi, buffer_body_size=1024)
    with wire.connect(addr(server)) as sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 5000
        )
        time.sleep(0.2)  # the application is reading the streamed body
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    fields = lines.parsed()[0]
    assert (fields["r"], fields["s"], fields["b"]) == ("POST /up HTTP/1.1", "499", "0")


# -- item 16: the user -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "user"),
    [
        ("Basic " + base64.b64encode(b"taro:secret").decode(), "taro"),
        ("basic " + base64.b64encode(b"hana:").decode(), "hana"),
        ("Basic " + base64.b64encode(b'a"b\x01:pw').decode(), r"a\"b\x01"),
        ("Basic !!!notbase64", "-"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "-"),
        ("Bearer abc.def", "-"),
    ],
)
def test_user_is_the_basic_auth_name(
    start_engine: StartEngine, lines: Lines, authorization: str, user: str
) -> None:
    wire.get(addr(start_engine()), "/", f"Authorization: {authorization}\r\n")
    assert lines.parsed()[0]["u"] == user


# -- formats and destinations --------------------------------------------------------------------


def test_json_format(start_engine: StartEngine, lines: Lines) -> None:
    server = start_engine(access_log_format="json")
    auth = base64.b64encode(b"taro:pw").decode()
    extra = f'User-Agent: ua "1"\r\nAuthorization: Basic {auth}\r\n'
    wire.get(addr(server), "/p?q=1", extra)
    lines.wait(1)  # the line follows the response: wait, so the two come in order
    wire.exchange(addr(server), b"GET / HTTP/9.9\r\n\r\n")
    first, refused = (json.loads(line) for line in lines.wait(2))
    assert list(first) == list(refused)  # stable keys, always all of them
    assert first["status"] == 200 and first["bytes"] == 12 and first["user"] == "taro"
    assert (first["method"], first["path"], first["query"]) == ("GET", "/p?q=1", "q=1")
    assert first["user_agent"] == 'ua "1"' and first["referer"] is None
    assert first["pid"] == os.getpid() and first["duration_us"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", first["time"])
    assert refused["status"] == 505 and refused["method"] is None


def test_custom_format_atoms(start_engine: StartEngine, lines: Lines, engine: str) -> None:
    # %({key}e)s: an environ key on the thread engine, a scope key on the asyncio engine.
    variable = "SERVER_NAME" if engine == "threads" else "server"
    fmt = (
        "%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%({x-req}i)s|%({x-out}o)s|"
        f"%({{content-type}}i)s|%({{missing}}i)s|%({{{variable}}}e)s|%(p)s|%(T)s|%(l)s|100%%"
    )
    server = start_engine(echo_headers, echo_headers_asgi, access_log_format=fmt)
    request = (
        b'POST /path?a=b HTTP/1.1\r\nHost: x\r\nX-Req: r"q\r\nContent-Type: text/x\r\n'
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    wire.exchange(addr(server), request)
    (line,) = lines.wait()
    parts = line.split("|")
    assert parts[:9] == [
        "POST",
        "/path",
        "a=b",
        "HTTP/1.1",
        "201",
        "2",
        r"r\"q",
        r"o\"k",
        "text/x",
    ]
    assert parts[9] == "-" and parts[10] != "-"
    if engine != "threads":
        assert parts[10] == addr(server)  # the scope's server, as host:port
    assert parts[11] == f"<{os.getpid()}>" and parts[12] == "0"
    assert parts[13:] == ["-", "100%"]


def test_fast_path_writes_no_record_and_flushes_at_shutdown(
    start_engine: StartEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    access = logging.getLogger("kakehashi.access")
    log = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(log), flush_interval=30)  # only shutdown flushes
    access.addHandler(handler)
    access.propagate = False
    try:
        server = start_engine()
        for number in range(20):
            assert wire.get(addr(server), f"/n{number}").status == 200
        assert not [r for r in caplog.records if r.name == "kakehashi.access"]
        server.shutdown(timeout=2)
        written = log.read_text().splitlines()
        paths = sorted(m.group(4) for m in map(LINE.fullmatch, written) if m is not None)
        assert paths == sorted(f"GET /n{number} HTTP/1.1" for number in range(20))
    finally:
        access.removeHandler(handler)
        access.propagate = True
        handler.close()


def test_a_handler_with_a_formatter_takes_the_logging_path(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    access = logging.getLogger("kakehashi.access")
    access.setLevel(logging.INFO)
    log = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(log))
    handler.setFormatter(logging.Formatter("ACCESS %(levelname)s %(message)s"))
    access.addHandler(handler)
    access.propagate = False
    try:
        server = start_engine()
        wire.get(addr(server), "/formatted")
        server.shutdown(timeout=2)
        assert log.read_text().startswith("ACCESS INFO 127.0.0.1 - - [")
    finally:
        access.removeHandler(handler)
        access.propagate = True
        access.setLevel(logging.NOTSET)
        handler.close()


def test_scope_values_set_by_middleware_are_escaped_too(
    start_asgi: Callable[..., Any], lines: Lines
) -> None:
    async def proxy_fix(scope: Scope, receive: Any, send: Any) -> None:
        # As a middleware may: scope values from client headers, read by the line as left.
        headers = dict(scope["headers"])
        scope["client"] = (headers[b"x-forwarded-for"].decode("latin-1"), 0)
        scope["method"] = headers[b"x-http-method-override"].decode("latin-1")
        await echo_headers_asgi(scope, receive, send)

    extra = 'X-Forwarded-For: 1.2.3.4 "x"\r\nX-HTTP-Method-Override: PUT "y"\r\n'
    wire.get(addr(start_asgi(proxy_fix)), "/mw", extra)
    fields = lines.parsed()[0]
    assert fields["h"] == r"1.2.3.4\x20\"x\""
    assert fields["r"] == r"PUT \"y\" /mw HTTP/1.1"
