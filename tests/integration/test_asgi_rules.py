"""The ASGI rules (asgiref's www.rst and lifespan.rst; our notes in docs/asgi.md), one test per
rule, over real sockets on the asyncio engine, on both loops."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kakehashi.errors import LocalProtocolError
from kakehashi.server.aio import LifespanFailed
from tests import asgi_apps
from tests.conftest import addr
from tests.integration import tls_certs
from tests.wire import Reader, connect, exchange, get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

H = b"Host: x\r\n"


@pytest.fixture(params=["asyncio", "uvloop"])
def serve(request: pytest.FixtureRequest, start_asgi: Any) -> Any:
    """``serve(app, **config)``: the address of an AsyncServer on the loop under test."""

    def start(app: Any, **settings: Any) -> str:
        return addr(start_asgi(app, loop=request.param, **settings))

    return start


def http_only(handler: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await handler(scope, receive, send)

    return app


# -- the scope ---------------------------------------------------------------------------------


def test_the_scope_over_the_wire(serve: Any) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string")}
        seen["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        seen["raw_path"] = scope["raw_path"].decode()
        seen["query_string"] = scope["query_string"].decode()
        await asgi_apps.text(send, json.dumps(seen).encode())

    where = serve(http_only(handler), root_path="/app")
    raw = b"GET /app/caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    [resp] = exchange(where, raw)
    scope = json.loads(resp.body)
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.1", "GET", "http")
    assert scope["path"] == "/app/café/a/b"
    assert scope["raw_path"] == "/app/caf%C3%A9/a%2Fb"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["root_path"] == "/app"
    assert scope["headers"] == [["host", "h"], ["x-a", "1"], ["x-a", "2"]]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", int(where.rsplit(":", 1)[1])]
    assert scope["state"] == {}
    assert set(scope["extensions"]) == {
        "http.response.trailers", "http.response.early_hint", "http.response.pathsend",
    }  # fmt: skip


# -- request bodies ----------------------------------------------------------------------------


def test_a_chunked_body_arrives_dechunked_with_more_body(serve: Any) -> None:
    messages: list[tuple[int, bool]] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            messages.append((len(message["body"]), message["more_body"]))
            body += message["body"]
            if not message["more_body"]:
                break
        await asgi_apps.text(send, body)

    with connect(serve(http_only(handler))) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in (b"3\r\nabc\r\n", b"4\r\ndefg\r\n", b"0\r\n\r\n"):
            time.sleep(0.1)
            sock.sendall(piece)
        resp = Reader(sock).read_response()
    assert resp.body == b"abcdefg"
    assert messages[-1][1] is False and all(more for _, more in messages[:-1])
    assert len(messages) >= 2 and sum(n for n, _ in messages) == 7


def test_body_pieces_are_joined_up_to_64_kib_and_a_big_upload_is_not_copied_whole(
    serve: Any, start_asgi: Any
) -> None:
    # The app is held until all is received, so every piece waits at once: 200 small chunks
    # come as one message; 4 MiB comes in messages of at most the 64 KiB joined (or one
    # piece as received, up to the loop's read size), never joined into one copy of it all.
    sizes: list[int] = []
    go = asyncio.Event()

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        sizes.clear()
        await asyncio.wait_for(go.wait(), 5)
        go.clear()
        body = b""
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            body += message["body"]
            if not message["more_body"]:
                break
        await asgi_apps.text(send, b"%d %d" % (len(body), hash(body) & 0xFFFF))

    server_loop: list[asyncio.AbstractEventLoop] = []

    async def capture(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not server_loop:
            server_loop.append(asyncio.get_running_loop())
        await handler(scope, receive, send)

    where = serve(http_only(capture))
    small = b"".join(b"a\r\n" + bytes([65 + i % 26]) * 10 + b"\r\n" for i in range(200))
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB
    with connect(where) as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        sock.sendall(small + b"0\r\n\r\n")
        time.sleep(0.3)
        server_loop[0].call_soon_threadsafe(go.set)
        resp = reader.read_response()
        assert resp.body.split()[0] == b"2000" and sizes == [2000]
        sock.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(big))
        for at in range(0, 200 * 1024, 50 * 1024):  # 4 pieces, below the mark: they wait
            sock.sendall(big[at : at + 50 * 1024])
            time.sleep(0.05)
        time.sleep(0.2)
        server_loop[0].call_soon_threadsafe(go.set)
        sock.sendall(big[200 * 1024 :])
        resp = reader.read_response()
    assert resp.body == b"%d %d" % (len(big), hash(big) & 0xFFFF)
    assert sum(sizes) == len(big) and len(sizes) >= 4
    assert sizes[0] < 200 * 1024  # the waiting 50 KiB pieces were not joined into one
    assert max(sizes) <= 256 * 1024  # a piece as read, or pieces joined up to 64 KiB


def test_receive_after_the_response_says_disconnect_at_once(serve: Any) -> None:
    got: list[Any] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got.append(await receive())
        await asgi_apps.text(send, b"done")
        got.append(await asyncio.wait_for(receive(), 1))  # never blocks forever

    where = serve(http_only(handler))
    assert get(where).body == b"done"
    assert wait_for(lambda: len(got) == 2)
    assert got == [{"type": "http.request", "body": b"", "more_body": False},
                   {"type": "http.disconnect"}]  # fmt: skip


def test_a_client_that_leaves_is_a_disconnect_within_a_second(serve: Any) -> None:
    seen: list[float] = []
    ready = threading.Event()

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        ready.set()
        message = await receive()
        seen.append(time.monotonic())
        assert message == {"type": "http.disconnect"}

    sock = connect(serve(http_only(handler)))
    sock.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert ready.wait(5)
    left = time.monotonic()
    sock.close()
    assert wait_for(lambda: bool(seen), 2)
    assert seen[0] - left < 1.0


def test_100_continue_goes_out_when_the_app_reads(serve: Any) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/ignore":
            await asgi_apps.text(send, b"not read")
            return
        await asgi_apps.text(send, await asgi_apps.read_body(receive))

    where = serve(http_only(handler))
    head = b"POST /%s HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with connect(where) as sock:
        sock.sendall(head % b"read")
        reader = Reader(sock)
        assert reader.read_response().status == 100
        sock.sendall(b"hello")
        assert reader.read_response().body == b"hello"
    with connect(where) as sock:
        sock.sendall(head % b"ignore")
        reader = Reader(sock)
        resp = reader.read_response()
        assert (resp.status, resp.body) == (200, b"not read")  # no 100 before it
        assert reader.closed()  # the body it never asked for may still come: closed


def test_unread_body_bytes_pause_reading(serve: Any, start_asgi: Any) -> None:
    release = threading.Event()

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while not release.is_set():
            await asyncio.sleep(0.02)
        await asgi_apps.text(send, b"%d" % len(await asgi_apps.read_body(receive)))

    server = start_asgi(http_only(handler))
    size = 16 << 20
    with connect(addr(server), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % size)
        sender = threading.Thread(target=sock.sendall, args=(b"x" * size,))
        sender.start()
        time.sleep(0.5)
        held = [c.exch.buffered for c in list(server.ctx.connections) if c.exch is not None]
        release.set()
        sender.join(10)
        resp = Reader(sock).read_response()
    assert resp.body == b"%d" % size
    assert held and max(held) <= (256 + 256) * 1024  # the mark plus one read


def test_a_body_below_the_minimum_rate_gets_a_408(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")
    address = serve(asgi_apps.app, body_timeout=0.5, body_min_rate=1000)
    started = time.monotonic()
    with connect(address, timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1000\r\n\r\n")
        try:
            for _ in range(100):  # a byte every 50 ms: 20 B/s, progress but far too slow
                sock.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            pass  # closed on us, as it should be
        resp = Reader(sock).read_response()
    assert resp.status == 408 and b"body too slow" in resp.body
    assert time.monotonic() - started < 3
    assert "body slower than 1000 B/s" in caplog.text


def test_unix_socket_scope(start_asgi: Any, tmp_path: Path) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asgi_apps.text(send, json.dumps([scope["client"], scope["server"]]).encode())

    path = tmp_path / "app.sock"
    server = start_asgi(http_only(handler), bind=(f"unix:{path}",))
    [resp] = exchange(addr(server), b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert json.loads(resp.body) == [None, [str(path), None]]


# -- responses and faults ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before-start", "between-start-and-body", "bad-message"])
def test_a_failure_before_the_first_body_is_a_500(
    serve: Any, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            await asgi_apps.text(send, b"fine")
            return
        if where == "bad-message":
            await send({"type": "http.response.start", "status": "200"})
        if where == "between-start-and-body":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom on purpose")

    address = serve(http_only(handler))
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        reader = Reader(sock)
        resp = reader.read_response()
        assert (resp.status, resp.header("connection")) == (500, "close")
        assert reader.closed()
    assert get(address, "/ok").body == b"fine"  # and the server serves on
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info is not None  # the traceback is logged
    assert "Exception in ASGI application (GET /)" in errors[0].getMessage()


def test_a_failure_mid_response_cuts_the_connection(serve: Any) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom mid-response")

    with connect(serve(http_only(handler))) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        reader = Reader(sock)
        with pytest.raises((EOFError, ConnectionResetError)):
            reader.read_response()  # never presented as complete: no last chunk


def test_returning_without_a_response_is_a_500(serve: Any) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/half":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})

    address = serve(http_only(handler))
    assert get(address, "/nothing").status == 500
    with connect(address) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\n" + H + b"\r\n")
        with pytest.raises((EOFError, ConnectionResetError)):
            Reader(sock).read_response()


def test_sending_after_the_response_is_complete_raises(serve: Any) -> None:
    raised: list[BaseException] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asgi_apps.text(send, b"done")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except LocalProtocolError as exc:
            raised.append(exc)

    address = serve(http_only(handler))
    with connect(address) as sock:
        sock.sendall((b"GET / HTTP/1.1\r\n" + H + b"\r\n") * 2)
        reader = Reader(sock)
        assert [reader.read_response().body for _ in range(2)] == [b"done", b"done"]
    assert wait_for(lambda: len(raised) == 2)


def test_send_on_a_closed_connection_raises_an_oserror_not_logged(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []
    ready = threading.Event()

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        ready.set()
        try:
            for _ in range(200):
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await asyncio.sleep(0.01)
        except OSError as exc:
            raised.append(exc)
            raise

    sock = connect(serve(http_only(handler)))
    sock.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert ready.wait(5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    assert wait_for(lambda: bool(raised), 3)
    time.sleep(0.1)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_transfer_encoding_from_the_app_is_ignored(serve: Any) -> None:
    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"plain"})

    resp = get(serve(http_only(handler)))
    assert resp.body == b"plain" and resp.header("content-length") == "5"
    assert resp.header("transfer-encoding") is None


def test_trailers_early_hints_and_pathsend(serve: Any, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB
    path = tmp_path / "file.bin"
    path.write_bytes(payload)

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/trailers":
            start = {"type": "http.response.start", "status": 200, "headers": [],
                     "trailers": True}  # fmt: skip
            await send(start)
            await send({"type": "http.response.body", "body": b"data"})
            await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"42")]})
        elif scope["path"] == "/hint":
            await send({"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]})
            await asgi_apps.text(send, b"after the hint")
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(path)})

    address = serve(http_only(handler))
    with connect(address) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\n" + H + b"\r\n")
        raw = b""
        while not raw.endswith(b"\r\n\r\n") or b"0\r\n" not in raw:
            raw += sock.recv(65536)
    assert raw.endswith(b"4\r\ndata\r\n0\r\nx-sum: 42\r\n\r\n")
    with connect(address) as sock:
        sock.sendall(b"GET /hint HTTP/1.1\r\n" + H + b"\r\n")
        reader = Reader(sock)
        hint = reader.read_response()
        assert (hint.status, hint.header("link")) == (103, "</a.css>; rel=preload")
        assert reader.read_response().body == b"after the hint"
    resp = get(address, "/file", timeout=10)
    assert resp.header("content-length") == str(len(payload)) and resp.body == payload


def test_limit_concurrency_answers_503_at_once(serve: Any) -> None:
    address = serve(asgi_apps.app, limit_concurrency=1)
    slow: list[Any] = []
    thread = threading.Thread(target=lambda: slow.append(get(address, "/slow?1")))
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    resp = get(address)
    assert resp.status == 503 and time.monotonic() - started < 0.5
    assert b"more than 1 requests in flight" in resp.body
    thread.join(5)
    assert slow[0].status == 200
    assert get(address).status == 200


# -- flow control on the way out -----------------------------------------------------------------


def test_send_waits_for_a_slow_reader(serve: Any, start_asgi: Any) -> None:
    sent: list[int] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(256):  # 16 MiB
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            sent.append(1)
        await send({"type": "http.response.body"})

    server = start_asgi(http_only(handler))
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    host, port = addr(server).rsplit(":", 1)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.5)
        assert 0 < len(sent) < 64  # well under 4 MiB queued for a reader that reads nothing
        resp = Reader(sock).read_response()
    assert len(resp.body) == 16 << 20 and len(sent) == 256


def test_a_reader_that_stops_is_dropped(start_asgi: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi")
    server = start_asgi(asgi_apps.app, send_timeout=1, send_rate_window=2)
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    with connect(addr(server), timeout=10) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\n" + H + b"\r\n")
        assert wait_for(lambda: "slow reader" in caplog.text, 6)
    assert "no progress for 1 s" in caplog.text


# -- lifespan ------------------------------------------------------------------------------------


def test_lifespan_state_is_copied_into_each_scope(serve: Any) -> None:
    address = serve(asgi_apps.with_lifespan)
    expected = b"[('started', 'yes')]"
    assert get(address, "/state").body == expected
    assert get(address, "/state").body == expected  # the mutation stayed in its copy


def test_lifespan_startup_failure_stops_the_server(start_asgi: Any) -> None:
    with pytest.raises(LifespanFailed, match="no database at db:5432"):
        start_asgi(asgi_apps.failing_startup)


# -- the watchdog --------------------------------------------------------------------------------


def test_a_blocked_loop_is_logged_once_with_its_stack(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    address = serve(asgi_apps.app, loop_watchdog=0.2)
    assert get(address, "/block?0.8").body == b"blocked"
    time.sleep(0.3)
    stalls = [r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()]
    assert len(stalls) == 1, stalls
    assert "time.sleep" in stalls[0] and "_block" in stalls[0]  # the culprit's line


# -- shutdown ------------------------------------------------------------------------------------


def test_shutdown_answers_what_was_received_then_stops(start_asgi: Any) -> None:
    server = start_asgi(asgi_apps.app, shutdown_linger=0.2)
    with connect(addr(server)) as sock:
        pipelined = b"GET /slow?0.5 HTTP/1.1\r\n" + H + b"\r\n" + b"GET /pid HTTP/1.1\r\n" + H
        sock.sendall(pipelined + b"\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        stopper = threading.Thread(target=server.shutdown, args=(5,))
        stopper.start()
        reader = Reader(sock)
        first, second = reader.read_response(), reader.read_response()
        assert reader.closed()
        stopper.join(10)
    assert (first.body, second.status) == (b"slept 0.5", 200)
    assert second.header("connection") == "close"
    assert time.monotonic() - started < 2


def test_shutdown_cuts_what_outlives_the_grace_period(start_asgi: Any) -> None:
    server = start_asgi(asgi_apps.app)
    with connect(addr(server)) as sock:
        sock.sendall(b"GET /slow?30 HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        server.shutdown(0.5)
        assert time.monotonic() - started < 1.0  # the grace period plus 0.5 s at most
        assert Reader(sock).closed(1)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# -- TLS -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not tls_certs.have_openssl(), reason="needs openssl to make certificates")
def test_tls_gives_https_and_the_tls_extension(serve: Any, tmp_path: Path) -> None:
    certs = tls_certs.make_certs(tmp_path)

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        tls = scope["extensions"]["tls"]
        seen = {
            "scheme": scope["scheme"],
            **{k: v for k, v in tls.items() if k != "client_cert_chain"},
        }
        seen["chain"] = len(tls["client_cert_chain"])
        await asgi_apps.text(send, json.dumps(seen).encode())

    address = serve(
        http_only(handler), certfile=str(certs.server_cert), keyfile=str(certs.server_key),
        ca_certs=str(certs.ca), cert_reqs="optional",
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    host, port = address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        seen = json.loads(Reader(sock).read_response().body)  # type: ignore[arg-type]
    assert seen["scheme"] == "https"
    assert seen["tls_version"] in (0x0303, 0x0304) and isinstance(seen["cipher_suite"], int)
    assert seen["client_cert_name"] == "CN=client,O=Kakehashi Tests" and seen["chain"] == 1


def test_the_last_send_of_a_closing_response_does_not_wait_or_raise(start_asgi: Any) -> None:
    after: list[str] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * (4 << 20)})  # the only piece
        after.append("ran")  # work after the response, as Starlette's background tasks

    server = start_asgi(http_only(handler))
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    with connect(addr(server), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: the connection closes after it
        assert wait_for(lambda: after == ["ran"], 3)  # while the client has read nothing
        assert len(Reader(sock).read_response().body) == 4 << 20
