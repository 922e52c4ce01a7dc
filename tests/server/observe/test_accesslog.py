"""Access-line building: escaping, the Basic-auth user, gunicorn's atoms, JSON, the clock,
and the choice between the buffered fast path and a logging record."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.errors import ConfigError
from kakehashi.http1 import Request
from kakehashi.server import ServerConfig
from kakehashi.server.observe.accesslog import (
    BATCH,
    DEFAULT_FORMAT,
    AccessLog,
    _fast_handler,
    basic_user,
    check_format,
    escape,
    first_line,
    request_line,
)
from kakehashi.server.observe.logfile import LogFileHandler
from kakehashi.server.threads.environ import ENVIRON_READER
from tests.wire import wait_until

ENVIRON = {
    "REMOTE_ADDR": "10.0.0.7",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/p?q=1",
    "PATH_INFO": "/p",
    "QUERY_STRING": "q=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_REFERER": "http://r/",
    "HTTP_USER_AGENT": "ua/1",
    "HTTP_X_TRACE": "abc",
    "CONTENT_TYPE": "text/plain",
}


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain /path?x=1", "plain /path?x=1"),
        ('a"b', r"a\"b"),
        ("back\\slash", r"back\\slash"),
        ("tab\there\x00\x1f\x7f", r"tab\x09here\x00\x1f\x7f"),
        ("caf\xe9\xff", r"caf\xe9\xff"),
        ("\u3042", r"\xe3\x81\x82"),
        ("", ""),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


@pytest.mark.parametrize(
    ("value", "user"),
    [
        (None, "-"),
        ("Basic " + base64.b64encode(b"taro:pw").decode(), "taro"),
        ("BASIC   " + base64.b64encode(b"taro:p:w").decode(), "taro"),
        ("Basic " + base64.b64encode("太郎:pw".encode()).decode(), r"\xe5\xa4\xaa\xe9\x83\x8e"),
        ("Basic " + base64.b64encode(b":pw").decode(), "-"),
        ("Basic " + base64.b64encode(b"taro yamada:pw").decode(), r"taro\x20yamada"),
        ("Basic not base64!", "-"),
        ("Digest username=x", "-"),
    ],
)
def test_basic_user(value: str | None, user: str) -> None:
    assert basic_user(value) == user


def test_first_line_and_request_line() -> None:
    assert first_line(b"GET / HTTP/1.1\r\nHost: x\r\n") == "GET / HTTP/1.1"
    assert first_line(b"\r\nGET /\x01 HTTP/1.1\r\n") == r"GET /\x01 HTTP/1.1"
    assert first_line(b"GET / HTTP/1.1") == "-"  # not whole yet
    assert first_line(b"GET /" + b"a" * 50 + b" HTTP/1.1\r\n", limit=20) == "-"
    assert request_line(Request(b"POST", b'/a"', http_version=b"1.0")) == r"POST /a\" HTTP/1.0"


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("%(Z)s", r"unknown atom %\(Z\)s"),
        ("%(h)s %(foo)s", r"unknown atom %\(foo\)s"),
        ("%({}i)s", r"unknown atom %\(\{\}i\)s"),
        ("%(h)s %d", "stray % at '%d'"),
        ("%(h)d", "stray % at '%\\(h\\)d'"),
        ("100% %(s)s", "stray % at '% %"),
        ("%(h)s\n%(s)s", "line break"),
        ("x" * 5000, "longer than"),
    ],
)
def test_bad_formats_are_refused(fmt: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_format(fmt)
    with pytest.raises(ConfigError, match=message):
        ServerConfig(access_log_format=fmt)


def test_percent_percent_is_a_literal_even_before_a_parenthesis(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _line("%%(h)s=%(h)s 100%%", caplog) == "%(h)s=10.0.0.7 100%"


def _line(fmt: str, caplog: pytest.LogCaptureFixture, **kwargs: object) -> str:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    caplog.clear()
    log = AccessLog(ENVIRON_READER, fmt)
    if kwargs.get("refused"):
        log.refused("10.0.0.8", 400, 39, '"GET /\\x01 HTTP/1.1"')
    else:
        log.response(ENVIRON, 200, 1234, 0.0125, [(b"Content-Type", b"text/html")])
    (record,) = [r for r in caplog.records if r.name == "kakehashi.access"]
    return record.getMessage()


def test_the_default_format(caplog: pytest.LogCaptureFixture) -> None:
    line = _line(DEFAULT_FORMAT, caplog)
    pattern = (
        r'10\.0\.0\.7 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /p\?q=1 HTTP/1\.1" '
        r'200 1234 "http://r/" "ua/1" 12500'
    )
    assert re.fullmatch(pattern, line), line


def test_the_default_format_compiled_agrees(caplog: pytest.LogCaptureFixture) -> None:
    # The same atoms in another order of spaces take the generic path: same fields.
    fast = _line(DEFAULT_FORMAT, caplog)
    generic = _line(DEFAULT_FORMAT + " ", caplog)
    assert generic == fast + " "


def test_every_atom(caplog: pytest.LogCaptureFixture) -> None:
    fmt = (
        "%(h)s|%(l)s|%(u)s|%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(b)s|%(f)s|%(a)s|"
        "%(T)s|%(M)s|%(D)s|%(L)s|%({x-trace}i)s|%({Content-Type}i)s|%({content-type}o)s|"
        "%({x-none}o)s|%({QUERY_STRING}e)s"
    )
    parts = _line(fmt, caplog).split("|")
    assert parts == [
        "10.0.0.7", "-", "-", "GET /p?q=1 HTTP/1.1", "GET", "/p", "q=1", "HTTP/1.1", "200",
        "1234", "1234", "http://r/", "ua/1", "0", "12", "12500", "0.012500", "abc",
        "text/plain", "text/html", "-", "q=1",
    ]  # fmt: skip


def test_a_refused_request_in_every_format(caplog: pytest.LogCaptureFixture) -> None:
    line = _line('%(h)s %(u)s "%(r)s" %(s)s %(b)s %(m)s %({x-trace}i)s', caplog, refused=True)
    assert line == '10.0.0.8 - ""GET /\\x01 HTTP/1.1"" 400 39 - -'
    record = json.loads(_line("json", caplog, refused=True))
    assert record["status"] == 400 and record["method"] is None and record["user"] is None


def test_json_keys_are_stable(caplog: pytest.LogCaptureFixture) -> None:
    record = json.loads(_line("json", caplog))
    assert list(record) == [
        "time", "remote_addr", "user", "request", "method", "path", "query", "protocol",
        "status", "bytes", "referer", "user_agent", "duration_us", "pid",
    ]  # fmt: skip
    assert record["duration_us"] == 12500 and record["bytes"] == 1234


def test_fast_path_only_for_a_bare_log_file_handler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    access = logging.getLogger("kakehashi.access")
    handler = LogFileHandler(filename=str(tmp_path / "a.log"))
    access.addHandler(handler)
    access.propagate = False
    log = AccessLog(ENVIRON_READER)
    try:
        log.response(ENVIRON, 200, 1, 0.0)
        assert not handler._lines  # waits in the log's batch
        log.drain()
        assert len(handler._lines) == 1  # queued directly, no record
        assert not [r for r in caplog.records if r.name == "kakehashi.access"]
        access.propagate = True  # a parent wants the records too: the logging path
        log.response(ENVIRON, 200, 2, 0.0)
        log.drain()  # the batch finds the setup changed: its line goes as a record
        assert [r.getMessage()[-20:] for r in caplog.records][-1].endswith('"ua/1" 0')
        assert len(handler._lines) == 2  # through emit(), as a record
        log.response(ENVIRON, 200, 3, 0.0)  # and from now on at once
        assert len(handler._lines) == 3
        assert len([r for r in caplog.records if r.name == "kakehashi.access"]) == 2
    finally:
        access.removeHandler(handler)
        access.propagate = True
        handler.close()


@contextlib.contextmanager
def sole_handler(handler: LogFileHandler) -> Iterator[None]:
    """Make ``handler`` the access logger's only handler, at INFO, not propagating: the
    setup of ``kakehashi serve``, where lines are batched.

    Entered in the test's body, never in a fixture: pytest (9.2 and later) adds its capture
    handler to every logger that does not propagate when a test's call begins, after the
    fixtures ran, and a second handler rightly turns batching off (it would never see the
    batched lines).  Whatever else the logger had, the runner's handler among them, is put
    back on the way out."""
    access = logging.getLogger("kakehashi.access")
    saved = (access.handlers[:], access.propagate, access.level)
    access.handlers = [handler]
    access.propagate = False
    access.setLevel(logging.INFO)
    try:
        assert _fast_handler() is handler  # the precondition of every test that uses it
        yield
    finally:
        access.handlers, access.propagate = saved[0], saved[1]
        access.setLevel(saved[2])


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[tuple[LogFileHandler, Path]]:
    """A LogFileHandler on a file, to be the access logger's only one (``sole_handler``)."""
    path = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(path), flush_interval=0.1)
    try:
        yield handler, path
    finally:
        handler.close()


def test_the_request_that_fills_a_batch_hands_it_over(
    log_file: tuple[LogFileHandler, Path],
) -> None:
    handler, _ = log_file
    with sole_handler(handler):
        log = AccessLog(ENVIRON_READER)
        for sent in range(BATCH - 1):
            log.response(ENVIRON, 200, sent, 0.0)
        assert not handler._lines  # the environs wait in the batch, no line made yet
        log.response(ENVIRON, 200, BATCH - 1, 0.0)
        lines = list(handler._lines)
    assert len(lines) == BATCH and not log._pending  # made and handed over, in order
    assert [int(line.split('"')[2].split()[1]) for line in lines] == list(range(BATCH))


def test_a_waiting_batch_is_written_within_the_flush_interval(
    log_file: tuple[LogFileHandler, Path],
) -> None:
    handler, path = log_file
    handler.start()
    with sole_handler(handler):
        log = AccessLog(ENVIRON_READER)
        log.response(ENVIRON, 200, 5, 0.0)  # one line, far from a full batch
        assert log._pending  # batched: only the flusher can write it
        assert wait_until(lambda: path.read_text().count("\n") == 1, timeout=3)
    assert '"GET /p?q=1 HTTP/1.1" 200 5 "http://r/" "ua/1" 0' in path.read_text()


def test_an_unbuffered_handler_gets_each_line_at_once(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    handler = LogFileHandler(filename=str(path), buffered=False)
    try:
        with sole_handler(handler):
            log = AccessLog(ENVIRON_READER)
            log.response(ENVIRON, 200, 7, 0.0)
            assert '" 200 7 "' in path.read_text()  # written, not waiting for a batch
            assert not log._pending
    finally:
        handler.close()


def test_a_line_that_fails_to_render_costs_no_other(log_file: tuple[LogFileHandler, Path]) -> None:
    handler, path = log_file
    with sole_handler(handler):
        log = AccessLog(ENVIRON_READER)
        log.response(ENVIRON, 200, 1, 0.0)
        log.response({"RAW_URI": "/x"}, 200, 2, 0.0)  # a middleware dropped REMOTE_ADDR
        log.response(ENVIRON, 200, 3, 0.0)
        assert len(log._pending) == 3  # batched: rendered together, when drained
        log.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert lines[1] == "(access line failed to render: KeyError('REMOTE_ADDR'))"
    assert '" 200 3 "' in lines[2]


def test_a_level_set_while_serving_applies_to_batched_lines(
    log_file: tuple[LogFileHandler, Path],
) -> None:
    handler, path = log_file
    access = logging.getLogger("kakehashi.access")
    with sole_handler(handler):
        log = AccessLog(ENVIRON_READER)
        log.response(ENVIRON, 200, 1, 0.0)
        access.setLevel(logging.WARNING)  # asked when the batch is drained, not per request
        log.response(ENVIRON, 200, 2, 0.0)
        log.flush()
        assert path.read_text() == ""
        access.setLevel(logging.INFO)
        log.response(ENVIRON, 200, 3, 0.0)
        log.flush()
    assert [line.split('"')[2].split()[1] for line in path.read_text().splitlines()] == ["3"]


def test_disabled_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    assert not AccessLog(ENVIRON_READER, enabled=False).is_enabled()
    AccessLog(ENVIRON_READER, enabled=False).refused("1.2.3.4", 400, 0)
    assert not caplog.records
