"""``kakehashi get`` against an in-process http.server: body, head, verbose, data, exit codes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cli import main
from tests.client.servers import LARGE, free_port, http_server, raw_server, silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with http_server() as url:
        yield url


def test_prints_exactly_the_body(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/"]) == 0
    out, err = capsysbinary.readouterr()
    assert (out, err) == (b"Hello, World", b"")


def test_large_binary_body_is_written_unchanged(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", base + "/large"]) == 0
    assert capsysbinary.readouterr().out == LARGE


def test_include_shows_the_head_first(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", "-i", base + "/chunked"]) == 0
    out = capsysbinary.readouterr().out
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"Hello, chunked World"


def test_verbose_shows_request_response_and_timings(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", "-v", "-H", "X-Test: yes", base + "/"]) == 0
    out, err = capsysbinary.readouterr()
    assert out == b"Hello, World"
    assert b"> GET / HTTP/1.1\n" in err and b"> X-Test: yes\n" in err
    assert b"< HTTP/1.1 200 OK\n" in err
    assert b"* connect " in err and b" total " in err


def test_method_headers_and_data(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-X", "PUT", "-d", "payload", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"payload"
    assert main(["get", "-i", "-d", "posted", base + "/echo"]) == 0  # -d implies POST
    assert b"X-Framing: length" in capsysbinary.readouterr().out


def test_data_from_a_file_and_stdin(
    base: str,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"\x00\x01file body")
    assert main(["get", "-d", f"@{path}", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"\x00\x01file body"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    assert main(["get", "-d", "@-", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"from stdin"


def test_fail_turns_4xx_into_exit_1(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/missing"]) == 0
    assert main(["get", "--fail", base + "/missing"]) == 1
    assert main(["get", "--fail", base + "/"]) == 0


def test_location_follows_redirects(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/redirect"]) == 0
    assert capsysbinary.readouterr().out == b""
    assert main(["get", "-L", "-v", base + "/redirect"]) == 0
    out, err = capsysbinary.readouterr()
    assert out == b"Hello, World" and err.count(b"> GET ") == 2


def test_connection_refused_exits_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", f"http://127.0.0.1:{free_port()}/"]) == 1
    assert b"ConnectError" in capsysbinary.readouterr().err


def test_a_body_cut_short_exits_1_after_the_partial_body(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", base + "/truncated"]) == 1
    out, err = capsysbinary.readouterr()
    assert out == b"0123456789"  # streamed as it came, and the exit code says it is short
    assert b"ReadError" in err and b"990 bytes" in err


def test_a_silent_server_times_out(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with raw_server(silent) as (host, port):
        assert main(["get", "--timeout", "0.3", f"http://{host}:{port}/"]) == 1
    assert b"ReadTimeout" in capsysbinary.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["ftp://x/"], ["-H", "no colon", "http://x/"], ["-d", "@/nonexistent/file", "http://x/"]],
)
def test_usage_errors_exit_2(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", *argv]) == 2
    assert capsysbinary.readouterr().err.startswith(b"kakehashi get: ")
