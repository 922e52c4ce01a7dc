"""Real clients against the server: curl, requests, http.client; IPv6 and a unix socket."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import server_apps
from tests.conftest import StartServer, addr
from tests.wire import get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def _port(where: str) -> int:
    return int(where.rsplit(":", 1)[1])


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20
    )


@needs_curl
def test_curl_keep_alive_reuses_the_connection(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    url = f"http://{addr(server)}"
    result = _curl("-v", f"{url}/", f"{url}/greeting")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, World" * 2
    assert "Re-using existing connection" in result.stderr


@needs_curl
def test_curl_upload_with_100_continue_and_chunked(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    url = f"http://{addr(server)}/echo"
    body = "x" * 2_000_000  # curl sends Expect: 100-continue for a body this big
    result = subprocess.run(
        ["curl", "-sS", "-v", "--max-time", "10", "--data-binary", "@-", url],
        input=body,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == body
    assert "HTTP/1.1 100 Continue" in result.stderr
    chunked = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-H", "Transfer-Encoding: chunked",
         "--data-binary", "@-", url],
        input="hello chunks",
        capture_output=True,
        text=True,
        timeout=20,
    )  # fmt: skip
    assert chunked.stdout == "hello chunks"


@needs_curl
def test_curl_head_and_http10(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    url = f"http://{addr(server)}/"
    head = _curl("-I", url)
    assert "Content-Length: 12" in head.stdout
    old = _curl("--http1.0", "-i", url)
    assert old.stdout.startswith("HTTP/1.1 200 OK")
    assert old.stdout.endswith("Hello, World")


@needs_curl
def test_curl_over_a_unix_socket(start_server: StartServer, tmp_path: Path) -> None:
    path = tmp_path / "k.sock"
    server = start_server(server_apps.app, bind=(f"unix:{path}",))
    assert server.addresses == [f"unix:{path}"]
    result = _curl("--unix-socket", str(path), "http://localhost/info")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["REMOTE_ADDR"] == "" and info["SERVER_NAME"] == "localhost"


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_ipv6_loopback(start_server: StartServer) -> None:
    server = start_server(server_apps.app, bind=("[::1]:0", "127.0.0.1:0"))
    v6, v4 = server.addresses
    assert v6.startswith("[::1]:")
    resp = get(v6, "/info")
    assert json.loads(resp.body)["REMOTE_ADDR"] == "::1"
    assert get(v4).status == 200
    if shutil.which("curl"):
        assert _curl("-g", f"http://{v6}/").stdout == "Hello, World"


def test_requests_session(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    url = f"http://{addr(server)}"
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(url + "/").text == "Hello, World"
        resp = session.post(url + "/echo", data=b"posted")
        assert resp.content == b"posted"

        def gen() -> Iterator[bytes]:
            yield b"chunk1,"
            yield b"chunk2"

        resp = session.post(url + "/echo", data=gen())  # Transfer-Encoding: chunked
        assert resp.content == b"chunk1,chunk2"
        streamed = session.get(url + "/big", stream=True)
        total = sum(len(c) for c in streamed.iter_content(1 << 20))
        assert total == 64 * 1024 * 1024
        assert streamed.headers["Transfer-Encoding"] == "chunked"
        streamed.close()


def test_http_client(start_server: StartServer) -> None:
    server = start_server(server_apps.app)
    conn = http.client.HTTPConnection("127.0.0.1", _port(addr(server)), timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"Hello, World")
        conn.request("POST", "/echo", body=iter([b"a", b"bc"]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})  # fmt: skip
        resp = conn.getresponse()
        assert resp.read() == b"abc"
        conn.request("POST", "/echo", body=b"x" * 3_000_000)  # streamed: over buffer size
        resp = conn.getresponse()
        assert len(resp.read()) == 3_000_000
        conn.request("HEAD", "/")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "12" and resp.read() == b""
    finally:
        conn.close()
