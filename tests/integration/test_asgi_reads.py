"""How the asyncio engine reads: on asyncio's own loop every connection is read into the
loop's one buffer (``BufferedHTTPConnection``: no fresh 256 KiB a read), on uvloop as a
plain Protocol.  Whatever the loop, the bytes of connections read in turn arrive whole and
each at its own connection, over TLS and after a PROXY protocol header too."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from kakehashi.server.aio.connection import BufferedHTTPConnection, HTTPConnection
from kakehashi.server.aio.proxyproto import BufferedProxiedConnection, ProxiedConnection
from tests.conftest import addr
from tests.integration import tls_certs
from tests.wire import Reader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CLIENTS = 6
BODY = 700 * 1024  # more than one read of 256 KiB, so reads of every size come in turn


async def digest(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the SHA-256 of the request body, taken as it streams in."""
    if scope["type"] != "http":
        return
    sha = hashlib.sha256()
    while True:
        message = await receive()
        sha.update(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = sha.hexdigest().encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("loop", "proxy", "expected"),
    [
        ("asyncio", "off", BufferedHTTPConnection),
        ("asyncio", "v1", BufferedProxiedConnection),
        ("uvloop", "off", HTTPConnection),
        ("uvloop", "v1", ProxiedConnection),
    ],
)
def test_each_loop_reads_its_cheapest_way(
    start_asgi: Any, loop: str, proxy: str, expected: type
) -> None:
    server = start_asgi(digest, loop=loop, proxy_protocol=proxy, proxy_allow_from="127.0.0.1")
    assert server._protocol is expected
    assert isinstance(server._protocol(server.ctx), asyncio.BufferedProtocol) == (loop == "asyncio")


def _upload(address: str, body: bytes, context: ssl.SSLContext | None, proxy: bool) -> str:
    """POST ``body`` in pieces of random sizes; the digest the server answered."""
    host, port = address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=20)
    sock: Any = raw
    if proxy:
        raw.sendall(b"PROXY TCP4 10.0.0.1 10.0.0.2 4000 80\r\n")
    if context is not None:
        sock = context.wrap_socket(raw, server_hostname="localhost")
    with sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        pieces = random.Random(len(body))
        at = 0
        while at < len(body):
            step = pieces.choice((1, 7, 1000, 4096, 65536, 300_000))
            sock.sendall(body[at : at + step])
            at += step
        response = Reader(sock).read_response()
    assert response.status == 200, response
    return response.body.decode()  # type: ignore[union-attr]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("way", ["plain", "tls", "proxy"])
def test_uploads_read_in_turn_each_arrive_whole(
    start_asgi: Any, tmp_path: Path, loop: str, way: str
) -> None:
    settings: dict[str, Any] = {}
    context = None
    if way == "tls":
        if not tls_certs.have_openssl():
            pytest.skip("needs openssl to make certificates")
        certs = tls_certs.make_certs(tmp_path)
        settings = {"certfile": str(certs.server_cert), "keyfile": str(certs.server_key)}
        context = ssl.create_default_context(cafile=str(certs.ca))
    elif way == "proxy":
        settings = {"proxy_protocol": "v1", "proxy_allow_from": "127.0.0.1"}
    address = addr(start_asgi(digest, loop=loop, **settings))
    bodies = [os.urandom(BODY + i) for i in range(CLIENTS)]
    got: dict[int, str] = {}

    def client(i: int) -> None:
        got[i] = _upload(address, bodies[i], context, way == "proxy")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(45)
    assert got == {i: hashlib.sha256(body).hexdigest() for i, body in enumerate(bodies)}
