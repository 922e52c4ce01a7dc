"""``kakehashi send``: exact bytes out, exact bytes back, escapes, pieces, nothing, pipelining."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kakehashi.cli import main
from kakehashi.cli.send import escape, to_crlf, unescape
from tests.client.servers import free_port, http_server, raw_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def recorder(
    seen: list[tuple[float, bytes]], reply: bytes = b"", quiet_after: float = 0.3
) -> Callable[[socket.socket], None]:
    """Record each piece received (with its time); reply once, then close after a quiet spell."""

    def respond(conn: socket.socket) -> None:
        conn.settimeout(quiet_after)
        for _ in range(1000):
            try:
                data = conn.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            seen.append((time.monotonic(), data))
        if reply:
            conn.sendall(reply)

    return respond


def received(seen: list[tuple[float, bytes]]) -> bytes:
    return b"".join(data for _, data in seen)


def test_sends_exact_bytes_and_prints_exact_reply(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[float, bytes]] = []
    reply = b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"garbage\n\x00\xfe")))
    with raw_server(recorder(seen, reply)) as (host, port):
        assert main(["send", f"{host}:{port}", "--wait", "3"]) == 0
    assert received(seen) == b"garbage\n\x00\xfe"
    assert capsysbinary.readouterr().out == reply


def test_crlf_and_file_input(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "req.txt"
    path.write_bytes(b"GET / HTTP/1.1\nHost: x\r\n\n")
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, b"ok")) as (host, port):
        assert main(["send", f"{host}:{port}", str(path), "--crlf"]) == 0
    assert received(seen) == REQUEST


def test_escape_view(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, b"A\r\n\x00\x7f\\\xe9")) as (host, port):
        assert main(["send", f"{host}:{port}", "--text", "x", "-x"]) == 0
    assert capsysbinary.readouterr().out == b"A\\r\\n\n\\x00\\x7f\\\\\\xe9\n"


def test_nothing_sends_nothing_and_reports_the_close(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, b"HTTP/1.1 408 Request Timeout\r\n\r\n")) as (host, port):
        assert main(["send", f"{host}:{port}", "--nothing", "-t"]) == 0
    out, err = capsysbinary.readouterr()
    assert seen == [] and out == b"HTTP/1.1 408 Request Timeout\r\n\r\n"
    assert b"connected to" in err and b"the server closed the connection" in err


def test_pieces_arrive_separately_and_in_time(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, b"done", quiet_after=1.0)) as (host, port):
        argv = ["send", f"{host}:{port}", "--split", "10", "--delay", "0.2", "-t"]
        assert main([*argv, "--text", "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"]) == 0
    assert received(seen) == REQUEST
    assert [len(d) for _, d in seen] == [10, 10, 7]
    assert seen[-1][0] - seen[0][0] >= 0.35
    err = capsysbinary.readouterr().err
    assert err.count(b"sent 10 bytes") == 2 and b"sent 7 bytes" in err


def test_two_pipelined_requests_get_two_responses(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    with http_server() as url:
        address = url.removeprefix("http://")
        text = "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /port HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
        assert main(["send", address, "--text", text, "--wait", "0.5"]) == 0
    out = capsysbinary.readouterr().out
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 2 and b"Hello, World" in out


def test_half_close_lets_a_read_until_close_server_answer(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, b"saw EOF", quiet_after=5)) as (host, port):
        assert main(["send", f"{host}:{port}", "--text", "hi", "--half-close"]) == 0
    assert capsysbinary.readouterr().out == b"saw EOF"


def test_a_silent_server_is_given_up_on(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    seen: list[tuple[float, bytes]] = []
    with raw_server(recorder(seen, quiet_after=3)) as (host, port):
        start = time.monotonic()
        assert main(["send", f"{host}:{port}", "--text", "x", "--wait", "0.3", "-t"]) == 0
        assert time.monotonic() - start < 2
    assert b"silent for 0.3 s; giving up" in capsysbinary.readouterr().err


def test_connection_refused_exits_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["send", f"127.0.0.1:{free_port()}", "--nothing"]) == 1
    assert b"ConnectError" in capsysbinary.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["nohost", "--nothing"], ["h:x", "--nothing"], ["127.0.0.1:1", "--split", "0", "--text", "a"]],
)
def test_usage_errors_exit_2(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["send", *argv]) == 2
    assert capsysbinary.readouterr().err.startswith(b"kakehashi send: ")


def test_helpers() -> None:
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    assert unescape("a\\r\\n\\x00\\\\\\t\\0\\xe9é") == b"a\r\n\x00\\\t\x00\xe9\xc3\xa9"
    assert unescape("太") == "太".encode()
    assert escape(b"a\tb") == "a\\tb"
