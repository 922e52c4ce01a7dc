"""Real ASGI frameworks, unchanged, through ``kakehashi serve`` on both loops, with httpx as
the client (tests/asgi_frameworks/: FastAPI, Starlette, Django, Quart)."""

from __future__ import annotations

import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[..., ServeProcess]
LOOPS = ["asyncio", "uvloop"]


def base(serve_process: Spawn, app: str, loop: str) -> str:
    proc = serve_process(app, "--port", "0", "--loop", loop)
    return f"http://{proc.address()}"


# -- FastAPI ---------------------------------------------------------------------------------------


@pytest.fixture(params=LOOPS)
def fastapi_url(serve_process: Spawn, request: pytest.FixtureRequest) -> Iterator[str]:
    """The FastAPI app's URL; at the end, SIGTERM: the lifespan shutdown removes the file
    its startup wrote (so no run leaves 1 MiB behind), and the process exits 0."""
    proc = serve_process("tests.asgi_frameworks.fastapi_app:app", "--port", "0",
                         "--loop", request.param)  # fmt: skip
    url = f"http://{proc.address()}"
    file = Path(tempfile.gettempdir()) / f"kakehashi-fastapi-{proc.proc.pid}.bin"
    yield url
    assert file.exists()  # the test was served: the startup wrote it
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr
    assert not file.exists()


def test_fastapi(fastapi_url: str) -> None:
    url = fastapi_url
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/items/42", params={"q": "tea"}).json() == {"item_id": 42, "q": "tea"}
        assert client.get("/items/nope").status_code == 422  # a path parameter that is no int
        assert client.post("/items", json={"name": "cup", "price": 2.5}).json() == {
            "name": "cup", "price": 2.5,
        }  # fmt: skip
        bad = client.post("/items", json={"name": "cup", "price": "free"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "price"]
        upload = client.post("/upload", files={"file": ("notes.txt", b"n" * 300_000)})
        assert upload.json() == {"filename": "notes.txt", "size": 300_000}
        assert client.get("/state").json() == {"greeting": "hello from lifespan"}
        assert client.get("/private").status_code == 401
        assert client.get("/private", headers={"x-token": "secret"}).json() == {"token": "secret"}
        teapot = client.get("/teapot")
        assert (teapot.status_code, teapot.json()) == (418, {"error": "teapot"})
        assert client.post("/background").json() == {"scheduled": "yes"}
        assert wait_for(lambda: client.get("/background").json() == ["done"])


def test_fastapi_streaming_arrives_piece_by_piece(fastapi_url: str) -> None:
    url = fastapi_url
    arrivals: list[tuple[float, bytes]] = []
    with httpx.stream("GET", url + "/stream", timeout=10) as resp:
        assert resp.headers["transfer-encoding"] == "chunked"
        for piece in resp.iter_raw():
            arrivals.append((time.monotonic(), piece))
    assert b"".join(p for _, p in arrivals) == b"piece 0\npiece 1\npiece 2\n"
    assert len(arrivals) == 3 and arrivals[-1][0] - arrivals[0][0] >= 0.45


def test_fastapi_file_response_goes_out_through_pathsend(fastapi_url: str) -> None:
    url = fastapi_url
    with httpx.Client(base_url=url, timeout=10) as client:
        resp = client.get("/file")
        assert resp.content == bytes(range(256)) * 4096
        assert resp.headers["content-length"] == str(1 << 20)
        assert "http.response.pathsend" in client.get("/seen").json()


# -- Starlette -------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_starlette_streams_a_chunked_upload_of_3_mib(serve_process: Spawn, loop: str) -> None:
    url = base(serve_process, "tests.asgi_frameworks.starlette_app:app", loop)

    def pieces() -> Iterator[bytes]:
        for _ in range(48):
            yield b"u" * 65536

    resp = httpx.post(url + "/upload", content=pieces(), timeout=20)
    assert resp.json()["bytes"] == 3 << 20 and resp.json()["pieces"] >= 2
    assert resp.headers["x-middleware"] == "seen"


@pytest.mark.parametrize("loop", LOOPS)
def test_starlette_sees_the_client_leave_within_a_second(serve_process: Spawn, loop: str) -> None:
    url = base(serve_process, "tests.asgi_frameworks.starlette_app:app", loop)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        left = time.time()
    with httpx.Client(base_url=url, timeout=5) as client:
        assert wait_for(lambda: bool(client.get("/left").json()), 3)
        seen = client.get("/left").json()[0]
    assert 0 <= seen - left < 1.0


# -- Django ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_django_asgi_async_and_sync_views(serve_process: Spawn, loop: str) -> None:
    url = base(serve_process, "tests.asgi_frameworks.django_asgi:application()", loop)
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/async", params={"q": "x"}).json() == {"kind": "async", "q": "x"}
        sync = client.get("/sync").json()
        assert sync["kind"] == "sync" and sync["thread"] != "MainThread"  # Django's thread
        body = (b"d" * 65536 for _ in range(48))  # 3 MiB, chunked
        assert client.post("/upload", content=body).text == str(3 << 20)


# -- Quart -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_quart_json_and_streaming(serve_process: Spawn, loop: str) -> None:
    url = base(serve_process, "tests.asgi_frameworks.quart_app:app", loop)
    with httpx.Client(base_url=url, timeout=10) as client:
        resp = client.post("/json", json={"a": [1, 2]})
        assert resp.json() == {"got": {"a": [1, 2]}, "framework": "quart"}
        arrivals = []
        with client.stream("GET", "/stream") as streamed:
            for piece in streamed.iter_raw():
                arrivals.append((time.monotonic(), piece))
    assert b"".join(p for _, p in arrivals) == b"quart 0\nquart 1\nquart 2\n"
    assert arrivals[-1][0] - arrivals[0][0] >= 0.3


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
