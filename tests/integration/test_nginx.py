"""The client against a real nginx, started by these tests on loopback from a tmp config.

nginx stamps every response with ``X-Conn: $connection`` (its serial number for the TCP
connection) and ``X-Conn-Requests: $connection_requests``, so keep-alive reuse is checked
from the server's side, not only from the client's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi import client
from kakehashi.cli import main
from kakehashi.client import Client
from tests.client.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.nginx, pytest.mark.timeout(60)]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
SMALL = b"small file served by nginx\n"
LARGE = os.urandom(5 * 1024 * 1024)

CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/plain txt; text/html html; application/octet-stream bin; }}
    keepalive_requests 3;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        add_header X-Conn $connection always;
        add_header X-Conn-Requests $connection_requests always;
        location /chunked {{ ssi on; }}
    }}
}}
"""


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    tmp = tmp_path_factory.mktemp("nginx")
    www = tmp / "www"
    (www / "chunked").mkdir(parents=True)
    (www / "small.txt").write_bytes(SMALL)
    (www / "large.bin").write_bytes(LARGE)
    (www / "chunked" / "index.html").write_text(
        'before <!--# echo var="connection_requests" --> after\n'
    )
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp, port=port))
    log = (tmp / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_small_file(nginx: str) -> None:
    r = client.get(nginx + "/small.txt")
    assert (r.status, r.body, r.headers["content-type"]) == (200, SMALL, "text/plain")
    assert r.headers["content-length"] == str(len(SMALL))
    assert r.headers["server"].startswith("nginx")


def test_keep_alive_reuses_one_tcp_connection(nginx: str) -> None:
    with Client(timeout=5) as c:
        rs = [c.get(nginx + "/small.txt") for _ in range(3)]
    assert len({r.headers["x-conn"] for r in rs}) == 1  # nginx saw one connection
    assert [r.headers["x-conn-requests"] for r in rs] == ["1", "2", "3"]
    assert [r.reused for r in rs] == [False, True, True]


def test_nginx_closing_after_keepalive_requests_opens_a_new_connection(nginx: str) -> None:
    with Client(timeout=5) as c:
        rs = [c.get(nginx + "/small.txt") for _ in range(4)]  # keepalive_requests 3
        assert rs[2].headers["connection"] == "close"
        assert c.transport.connections_opened == 2
    assert rs[3].headers["x-conn"] != rs[2].headers["x-conn"]
    assert rs[3].headers["x-conn-requests"] == "1"


def test_one_shot_requests_use_separate_connections(nginx: str) -> None:
    a, b = client.get(nginx + "/small.txt"), client.get(nginx + "/small.txt")
    assert a.headers["x-conn"] != b.headers["x-conn"]


def test_head_then_get_on_the_same_connection(nginx: str) -> None:
    with Client(timeout=5) as c:
        h = c.head(nginx + "/large.bin")
        g = c.get(nginx + "/small.txt")
    assert (h.status, h.body, h.headers["content-length"]) == (200, b"", str(len(LARGE)))
    assert g.body == SMALL and g.headers["x-conn"] == h.headers["x-conn"]


def test_large_body_whole_and_streamed(nginx: str) -> None:
    with Client(timeout=10) as c:
        assert c.get(nginx + "/large.bin").body == LARGE
        with c.stream("GET", nginx + "/large.bin") as r:
            total = sum(len(piece) for piece in r.iter_bytes())
        assert total == len(LARGE)
        assert c.get(nginx + "/small.txt").reused


def test_chunked_response_from_ssi(nginx: str) -> None:
    r = client.get(nginx + "/chunked/")
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.body == b"before 1 after\n"


def test_404_keeps_the_connection(nginx: str) -> None:
    with Client(timeout=5) as c:
        r = c.get(nginx + "/missing")
        assert r.status == 404 and b"404 Not Found" in r.body
        assert c.get(nginx + "/small.txt").reused


def test_304_for_a_matching_etag(nginx: str) -> None:
    with Client(timeout=5) as c:
        etag = c.get(nginx + "/small.txt").headers["etag"]
        r = c.get(nginx + "/small.txt", headers={"If-None-Match": etag})
    assert (r.status, r.body, r.reused) == (304, b"", True)


def test_kakehashi_get_include(nginx: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-i", nginx + "/small.txt"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"HTTP/1.1 200 OK\r\nServer: nginx") and out.endswith(b"\r\n\r\n" + SMALL)


def test_kakehashi_send_pipelined_and_garbage(
    nginx: str, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    address = nginx.removeprefix("http://")
    pipelined = "GET /small.txt HTTP/1.1\nHost: x\n\nGET /missing HTTP/1.1\nHost: x\n\n"
    (tmp_path / "two.txt").write_text(pipelined)
    assert main(["send", address, str(tmp_path / "two.txt"), "--crlf", "--wait", "1"]) == 0
    out = capsysbinary.readouterr().out
    assert out.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 404 Not Found" in out and SMALL in out
    assert main(["send", address, "--text", "garbage\\r\\n\\r\\n", "--wait", "1"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"HTTP/1.1 400 Bad Request")
