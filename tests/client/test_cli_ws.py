"""``kakehashi ws``: real ``kakehashi ws`` subprocesses against a ``websockets`` server on
127.0.0.1: stdin lines out and messages printed, ``--send`` and ``-n`` for scripts,
``--binary``, ``-H``, ``--subprotocol``, ``--compressed``, ``-v`` (handshake, frames, close
codes), and the exit codes; and a refused upgrade (403, 401, 503) from ``kakehashi serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from http import HTTPStatus

import pytest

pytest.importorskip("websockets")

from websockets.http11 import Request as WRequest
from websockets.http11 import Response as WResponse
from websockets.sync.server import ServerConnection

from kakehashi.cli.ws import describe_frame
from kakehashi.client import websocket
from kakehashi.websocket import FrameHeader, Opcode
from tests.client.servers import free_port
from tests.client.ws_servers import drain, ws_server
from tests.conftest import SRC, ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def kakehashi_ws(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "kakehashi", "ws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_stdin_lines_are_sent_and_replies_printed() -> None:
    with ws_server() as url:
        done = kakehashi_ws(url + "/echo", stdin="one\ntwo\nthree\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "one\ntwo\nthree\n"
    assert done.stderr == ""


def test_send_and_count_for_scripts() -> None:
    got: list[str | bytes] = []

    def handler(conn: ServerConnection) -> None:
        for message in conn:
            got.append(message)
            conn.send(f"re: {message!s}")
            conn.send("extra")

    with ws_server(handler) as url:
        done = kakehashi_ws(url, "--send", "a", "--send", "b", "-n", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "re: a\nextra\nre: b\n"
    assert got == ["a", "b"]


def test_binary_messages() -> None:
    kinds: list[type] = []

    def handler(conn: ServerConnection) -> None:
        message = conn.recv()
        kinds.append(type(message))
        conn.send(message)

    with ws_server(handler) as url:
        done = kakehashi_ws(url, "--binary", "--send", "bytes", "-n", "1")
    assert done.returncode == 0, done.stderr
    assert kinds == [bytes]
    assert done.stdout == "bytes\n"


def test_headers_subprotocol_and_compression_reach_the_server() -> None:
    seen: dict[str, object] = {}

    def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        seen["token"] = conn.request.headers.get("X-Token")
        seen["subprotocol"] = conn.subprotocol
        seen["extensions"] = conn.request.headers.get("Sec-WebSocket-Extensions")
        conn.send("hi")
        drain(conn)

    with ws_server(handler, subprotocols=["chat"], compression="deflate") as url:
        done = kakehashi_ws(
            url, "-H", "X-Token: s3cret", "--subprotocol", "chat", "--compressed", "-n", "1", "-v"
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"
    assert seen["token"] == "s3cret"
    assert seen["subprotocol"] == "chat"
    assert str(seen["extensions"]).startswith("permessage-deflate")
    assert "< Sec-WebSocket-Protocol: chat" in done.stderr
    assert "< TEXT fin=1 rsv=100 len=" in done.stderr  # compressed: RSV1 set


def test_verbose_shows_the_handshake_every_frame_and_the_close_codes() -> None:
    with ws_server(compression=None) as url:
        done = kakehashi_ws(url + "/v", "--send", "hello", "-v")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n"
    lines = done.stderr.splitlines()
    assert lines[0] == "> GET /v HTTP/1.1"
    assert "> Sec-WebSocket-Version: 13" in lines
    assert "< HTTP/1.1 101 Switching Protocols" in lines
    frames = [line for line in lines if line[2:].split(" ")[0] in ("TEXT", "CLOSE")]
    assert frames[0].startswith("> TEXT fin=1 rsv=000 len=5 mask=")
    assert frames[1] == "< TEXT fin=1 rsv=000 len=5 unmasked"
    assert frames[2].startswith("> CLOSE fin=1 rsv=000 len=2 mask=")
    assert frames[3] == "< CLOSE fin=1 rsv=000 len=2 unmasked"
    assert "* close code sent: 1000 ''; received: 1000 ''" in lines


def test_verbose_shows_fragments() -> None:
    def handler(conn: ServerConnection) -> None:
        conn.send(["ab", "cd"])
        drain(conn)

    with ws_server(handler, compression=None) as url:
        done = kakehashi_ws(url, "-n", "1", "-v")
    assert done.stdout == "abcd\n"
    assert "< TEXT fin=0 rsv=000 len=2 unmasked" in done.stderr
    assert "< CONTINUATION fin=0 rsv=000 len=2 unmasked" in done.stderr
    assert "< CONTINUATION fin=1 rsv=000 len=0 unmasked" in done.stderr


def test_a_server_close_with_an_error_code_exits_1() -> None:
    def handler(conn: ServerConnection) -> None:
        conn.send("bye")
        conn.close(4002, "policy")

    with ws_server(handler) as url:
        done = kakehashi_ws(url, "-v", stdin="")
        normal = kakehashi_ws(url, "-n", "5")  # fewer messages than asked: 4002 ends it
    assert done.returncode == 1
    assert done.stdout == "bye\n"
    assert "closed the WebSocket with 4002: policy" in done.stderr
    assert "received: 4002 'policy'" in done.stderr
    assert normal.returncode == 1


def test_a_normal_server_close_exits_0() -> None:
    def handler(conn: ServerConnection) -> None:
        conn.send("only")
        conn.close(1000)

    with ws_server(handler) as url:
        done = kakehashi_ws(url, "-n", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "only\n"


def test_a_refused_handshake_exits_1() -> None:
    def refuse(conn: ServerConnection, request: WRequest) -> WResponse:
        return conn.respond(HTTPStatus.UNAUTHORIZED, "no\n")

    with ws_server(process_request=refuse) as url:
        done = kakehashi_ws(url, "--send", "x")
    assert done.returncode == 1
    assert done.stderr == (
        "kakehashi ws: the server refused the WebSocket handshake with 401 Unauthorized\n"
    )
    assert done.stdout == ""


def test_verbose_shows_a_101_that_does_not_accept_the_request() -> None:
    # A 101 whose Sec-WebSocket-Accept is not the one our key asks for: the request and that
    # answer are shown under -v, as for a refusal, and the error names what is wrong.
    def wrong_accept(conn: ServerConnection, request: WRequest, response: WResponse) -> None:
        response.headers["Sec-WebSocket-Accept"] = "d3Jvbmcgd3Jvbmcgd3Jvbmc="

    with ws_server(process_response=wrong_accept) as url:
        done = kakehashi_ws(url, "-v", "--send", "x")
        quiet = kakehashi_ws(url, "--send", "x")
    assert done.returncode == 1 and quiet.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "> GET / HTTP/1.1" and "> Upgrade: websocket" in lines
    assert lines[lines.index(">") + 1] == "< HTTP/1.1 101 Switching Protocols"
    assert "< Sec-WebSocket-Accept: d3Jvbmcgd3Jvbmcgd3Jvbmc=" in lines
    assert lines[-2] == "<"
    error = "kakehashi ws: HandshakeInvalid: wrong Sec-WebSocket-Accept (101 Switching Protocols)"
    assert lines[-1] == error
    assert quiet.stderr.splitlines() == [error]  # without -v, that line only
    assert done.stdout == quiet.stdout == ""


# -- a refusal from kakehashi's own server: ``kakehashi serve`` of tests/ws_apps.py:guarded ----


@pytest.mark.parametrize(
    ("path", "status", "header", "body"),
    [
        # the application closed before its accept: the server's 403
        ("/closed", "403 Forbidden", "< Connection: close",
         ["< 403 Forbidden", "< the application closed the WebSocket before accepting"]),
        # websocket.http.response: the application's own status, headers and body
        ("/login", "401 Unauthorized", "< x-why: no token", ["< log in first"]),
    ],
)  # fmt: skip
def test_verbose_shows_a_refusal_from_a_real_server(
    serve_process: Callable[..., ServeProcess], path: str, status: str, header: str, body: list[str]
) -> None:
    proc = serve_process("tests.ws_apps:guarded", "--port", "0", "--interface", "asgi")
    url = f"ws://{proc.address()}{path}"
    done = kakehashi_ws(url, "-v", "--send", "x")
    quiet = kakehashi_ws(url, "--send", "x")
    assert done.returncode == 1 and quiet.returncode == 1
    assert done.stdout == "" and quiet.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"> GET {path} HTTP/1.1"
    assert "> Upgrade: websocket" in lines
    request_ends, head_ends = lines.index(">"), lines.index("<")
    assert lines[request_ends + 1] == f"< HTTP/1.1 {status}"
    assert header in lines[request_ends:head_ends]
    assert lines[head_ends + 1 : -1] == body  # the body, then the one line
    assert lines[-1] == f"kakehashi ws: the server refused the WebSocket handshake with {status}"
    assert quiet.stderr.splitlines() == [lines[-1]]  # without -v, that line only


def test_verbose_shows_a_503_over_the_limit_from_a_real_server(
    serve_process: Callable[..., ServeProcess],
) -> None:
    proc = serve_process(
        "tests.ws_apps:guarded", "--port", "0", "--interface", "asgi", "--limit-concurrency", "1"
    )
    url = f"ws://{proc.address()}/"
    with websocket.connect(url, timeout=5) as held:  # the one slot, taken
        held.send("mine")
        assert held.recv(timeout=5) == "mine"
        done = kakehashi_ws(url, "-v", "--send", "x")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "< HTTP/1.1 503 Service Unavailable" in lines
    assert lines[lines.index("<") + 1 :] == [
        "< 503 Service Unavailable",
        "< more than 1 requests in flight",
        "kakehashi ws: the server refused the WebSocket handshake with 503 Service Unavailable",
    ]


def test_nothing_listening_exits_1() -> None:
    done = kakehashi_ws(f"ws://127.0.0.1:{free_port()}/", "--send", "x", "--timeout", "2")
    assert done.returncode == 1
    assert "ConnectError" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["http://127.0.0.1:1/"], "ws:// or wss://"),
        (["ws://127.0.0.1:1/", "-H", "NoColon"], "Name: value"),
        (["ws://127.0.0.1:1/", "-n", "0"], "-n must be at least 1"),
        (["ws://127.0.0.1:1/", "--subprotocol", "a b"], "tokens"),
        (["ws://127.0.0.1:1/", "-H", "Upgrade: h2c"], "set by the WebSocket handshake"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = kakehashi_ws(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_describe_frame_names_unknown_opcodes() -> None:
    head = FrameHeader(True, Opcode.PING, 0, 3, None, 2)
    assert describe_frame(head, False) == "< PING fin=1 rsv=000 len=3 unmasked"
    odd = FrameHeader(False, 0x3, 5, 1, b"\x01\x02\x03\x04", 6)  # type: ignore[arg-type]
    assert describe_frame(odd, True) == "> opcode-0x3 fin=0 rsv=101 len=1 mask=01020304"
