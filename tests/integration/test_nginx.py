"""The client against a real nginx, started by these tests on loopback from a tmp config.

nginx stamps every response with ``X-Conn: $connection`` (its serial number for the TCP
connection) and ``X-Conn-Requests: $connection_requests``, so keep-alive reuse is checked
from the server's side, not only from the client's.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kakehashi import client
from kakehashi.app import App, Request
from kakehashi.cli import main
from kakehashi.client import Client
from kakehashi.server import Server, ServerConfig
from tests.client.servers import free_port
from tests.integration.daemons import running

pytestmark = [pytest.mark.integration, pytest.mark.nginx, pytest.mark.timeout(60)]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
SMALL = b"small file served by nginx\n"
LARGE = os.urandom(5 * 1024 * 1024)

# Every nginx of these tests runs in the foreground, with all its files under {tmp}.
PREAMBLE = """
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
"""
CONFIG = (
    PREAMBLE
    + """    types {{ text/plain txt; text/html html; application/octet-stream bin; }}
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
)


@contextlib.contextmanager
def running_nginx(tmp: Path, config: str, *ports: int) -> Iterator[None]:
    """nginx with ``config`` (written to ``tmp``), until it listens on every port."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    conf = tmp / "nginx.conf"
    conf.write_text(config)
    argv = [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    with running(argv, tmp / "stderr.log", *ports):
        yield


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("nginx")
    www = tmp / "www"
    (www / "chunked").mkdir(parents=True)
    (www / "small.txt").write_bytes(SMALL)
    (www / "large.bin").write_bytes(LARGE)
    (www / "chunked" / "index.html").write_text(
        'before <!--# echo var="connection_requests" --> after\n'
    )
    port = free_port()
    with running_nginx(tmp, CONFIG.format(tmp=tmp, port=port), port):
        yield f"http://127.0.0.1:{port}"


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


# -- kakehashi behind nginx: trusted proxy headers, prefixes, upstream keep-alive -------------

# The headers every proxied location sets (proxy_set_header at a level replaces all inherited
# ones, so each location includes this file).  nginx passes on any header it does not set, and
# kakehashi cannot tell who wrote it, so the one not used here is cleared ("" drops it).
PROXY_HEADERS = """
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header X-Forwarded-Port $server_port;
proxy_set_header X-Forwarded-Prefix "";
"""

PROXY_CONFIG = (
    PREAMBLE
    + """    upstream kakehashi {{ server {upstream}; keepalive 4; }}
    upstream mounted {{ server {mounted}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{ include {tmp}/proxy_headers.conf; proxy_pass http://kakehashi; }}
        location /prefixed/ {{
            include {tmp}/proxy_headers.conf;
            proxy_set_header X-Forwarded-Prefix /prefixed;
            proxy_pass http://kakehashi/;
        }}
        location /mounted/ {{ include {tmp}/proxy_headers.conf; proxy_pass http://mounted; }}
        location /rfc7239/ {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$http_host\\"";
            proxy_pass http://kakehashi/;
        }}
    }}
}}
"""
)

CLIENT_HOST = "127.0.0.2"  # a loopback address the default --forwarded-allow-ips does not trust
ENVIRON_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME",
                "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO")  # fmt: skip


def echo_app() -> App:
    app = App()

    @app.get("/echo")
    def echo(req: Request) -> dict[str, Any]:
        seen: dict[str, Any] = {key: req.environ.get(key) for key in ENVIRON_KEYS}
        seen["url"] = req.url_for("echo", _external=True)
        seen["proxy_headers"] = sorted(key for key in req.environ if "FORWARDED" in key)
        return seen

    return app


class CountingListener(socket.socket):
    """A listening socket that counts the connections kakehashi accepts from it."""

    accepted = 0

    def accept(self) -> tuple[socket.socket, Any]:
        pair = super().accept()
        self.accepted += 1
        return pair


def listener() -> CountingListener:
    sock = CountingListener(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


@dataclass
class Proxied:
    http: int  # nginx's plain port
    https: int  # nginx's TLS port
    cafile: Path
    upstream: CountingListener
    direct: str  # kakehashi's own address, for clients that skip nginx


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    """nginx on a plain and a TLS port, in front of two kakehashi servers (the second
    mounted with --root-path /mounted), both trusting only 127.0.0.1 (the default)."""
    tmp = tmp_path_factory.mktemp("nginx-proxy")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    (tmp / "proxy_headers.conf").write_text(PROXY_HEADERS)
    upstream, mounted = listener(), listener()
    config = ServerConfig(bind=("127.0.0.1:0",), threads=2, keep_alive=30.0,
                          forwarded_allow_ips="127.0.0.1,::1")  # fmt: skip
    servers = [
        Server(echo_app(), config, sockets=[upstream]),
        Server(echo_app(), config.replace(root_path="/mounted"), sockets=[mounted]),
    ]
    for server in servers:
        server.start()
    port, tls_port = free_port(), free_port()
    text = PROXY_CONFIG.format(
        tmp=tmp,
        port=port,
        tls_port=tls_port,
        upstream=servers[0].addresses[0],
        mounted=servers[1].addresses[0],
    )
    try:
        with running_nginx(tmp, text, port, tls_port):
            yield Proxied(port, tls_port, tmp / "cert.pem", upstream, servers[0].addresses[0])
    finally:
        for server in servers:
            server.shutdown(timeout=2)


def fetch(
    port: int, path: str, headers: dict[str, str] | None = None, cafile: Path | None = None
) -> dict[str, Any]:
    """GET through a fresh connection from CLIENT_HOST; the echoed environ."""
    conn: http.client.HTTPConnection
    if cafile is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                          source_address=(CLIENT_HOST, 0))  # fmt: skip
    else:
        context = ssl.create_default_context(cafile=str(cafile))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context,
                                           source_address=(CLIENT_HOST, 0))  # fmt: skip
    with contextlib.closing(conn):
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
    assert response.status == 200, body
    seen: dict[str, Any] = json.loads(body)
    return seen


def test_client_address_host_and_port_reach_the_app(proxied: Proxied) -> None:
    seen = fetch(proxied.http, "/echo")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == (CLIENT_HOST, "0")
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["HTTP_HOST"] == f"127.0.0.1:{proxied.http}"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", str(proxied.http))
    assert seen["url"] == f"http://127.0.0.1:{proxied.http}/echo"


def test_https_terminated_by_nginx_is_the_apps_scheme(proxied: Proxied) -> None:
    seen = fetch(proxied.https, "/echo", cafile=proxied.cafile)
    assert (seen["wsgi.url_scheme"], seen["SERVER_PORT"]) == ("https", str(proxied.https))
    assert seen["REMOTE_ADDR"] == CLIENT_HOST
    assert seen["url"] == f"https://127.0.0.1:{proxied.https}/echo"


def test_prefix_stripped_by_nginx_becomes_script_name(proxied: Proxied) -> None:
    seen = fetch(proxied.http, "/prefixed/echo")
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/prefixed", "/echo")
    assert seen["url"] == f"http://127.0.0.1:{proxied.http}/prefixed/echo"


def test_root_path_behind_nginx(proxied: Proxied) -> None:
    seen = fetch(proxied.https, "/mounted/echo", cafile=proxied.cafile)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/mounted", "/echo")
    assert seen["url"] == f"https://127.0.0.1:{proxied.https}/mounted/echo"


def test_rfc7239_forwarded_from_nginx(proxied: Proxied) -> None:
    seen = fetch(proxied.https, "/rfc7239/echo", cafile=proxied.cafile)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == (CLIENT_HOST, "https")
    assert seen["url"] == f"https://127.0.0.1:{proxied.https}/echo"
    assert seen["proxy_headers"] == ["HTTP_FORWARDED"]


def test_client_claims_through_nginx_do_not_win(proxied: Proxied) -> None:
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "evil.test", "X-Forwarded-Prefix": "/evil"}  # fmt: skip
    seen = fetch(proxied.http, "/echo", headers=spoof)
    # nginx appends the address it saw: "6.6.6.6, 127.0.0.2"; the right-most untrusted wins.
    assert seen["REMOTE_ADDR"] == CLIENT_HOST
    assert seen["url"] == f"http://127.0.0.1:{proxied.http}/echo"
    assert seen["SCRIPT_NAME"] == ""


def test_nginx_keeps_its_upstream_connection_alive(proxied: Proxied) -> None:
    fetch(proxied.http, "/echo")  # the upstream connection is open now
    before = proxied.upstream.accepted
    for _ in range(5):
        assert fetch(proxied.http, "/echo")["REMOTE_ADDR"] == CLIENT_HOST
    assert proxied.upstream.accepted - before <= 1  # without keep-alive it would be 5


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_direct_client_not_trusted_has_its_proxy_headers_removed(proxied: Proxied) -> None:
    port = proxied.direct.rsplit(":", 1)[1]
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "evil.test", "X-Forwarded-Port": "443",
             "X-Forwarded-Prefix": "/evil", "Forwarded": "for=6.6.6.6;proto=https"}  # fmt: skip
    access, handler = logging.getLogger("kakehashi.access"), Lines()
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    # The line of an earlier test's request through nginx may still be on its way (it is
    # written after the response is sent), so this request is told apart by its query.
    target = f"/echo?direct={time.monotonic_ns()}"
    try:
        seen = fetch(int(port), target, headers=spoof)
        deadline = time.monotonic() + 5
        while not ours(handler.lines, target) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert seen["REMOTE_ADDR"] == CLIENT_HOST and seen["REMOTE_PORT"] != "0"
    assert seen["proxy_headers"] == []
    assert seen["url"] == f"http://127.0.0.1:{port}/echo"
    [line] = ours(handler.lines, target)
    assert line.startswith(CLIENT_HOST + " - - [") and "6.6.6.6" not in line


def ours(lines: list[str], target: str) -> list[str]:
    return [line for line in lines if f"GET {target} HTTP/1.1" in line]


def test_loopback_excluded_from_trust_gets_headers_removed() -> None:
    """curl from 127.0.0.1 straight to a kakehashi that trusts only 10.0.0.0/8."""
    config = ServerConfig(bind=("127.0.0.1:0",), threads=2, forwarded_allow_ips="10.0.0.0/8")
    with Server(echo_app(), config) as server:
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-H", "X-Forwarded-For: 6.6.6.6",
             "-H", "X-Forwarded-Proto: https", "-H", "Forwarded: for=6.6.6.6",
             "-H", "X-Forwarded-Prefix: /evil", f"http://{server.addresses[0]}/echo"],
            check=True, capture_output=True, timeout=20,
        )  # fmt: skip
    seen = json.loads(out.stdout)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["SCRIPT_NAME"]) == (
        "127.0.0.1",
        "http",
        "",
    )
    assert seen["proxy_headers"] == []
