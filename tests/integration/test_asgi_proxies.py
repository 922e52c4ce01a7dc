"""Trusted proxies on the asyncio engine, over real sockets: requests carrying
``X-Forwarded-*`` and ``Forwarded`` from a trusted peer (127.0.0.1, the default
``--forwarded-allow-ips``, standing in for a proxy) and from an untrusted one (127.0.0.2);
what the scope says, and the URL Starlette builds from it.  The rules are unit-tested in
tests/server/aio/test_proxies.py; with a real nginx in front (WSGI) in test_nginx.py."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.wire import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

TRUSTED, UNTRUSTED = "127.0.0.1", "127.0.0.2"
StartASGI = Callable[..., Any]


async def echo_scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What the application sees: scope keys, its proxy fields, and Starlette's URL."""
    if scope["type"] != "http":
        return
    request = Request(scope, receive)
    seen = {
        "client": list(scope["client"]),
        "scheme": scope["scheme"],
        "server": list(scope["server"]),
        "root_path": scope["root_path"],
        "path": scope["path"],
        "host": request.headers.get("host"),
        "proxy_headers": sorted(k for k in request.headers if "forwarded" in k),
        "url": str(request.url),
    }
    await JSONResponse(seen)(scope, receive, send)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access lines, once there is one (it follows the response)."""
    wait_until(lambda: any(r.name == "kakehashi.access" for r in caplog.records), 5)
    return [r.getMessage() for r in caplog.records if r.name == "kakehashi.access"]


def fetch(address: str, path: str, headers: dict[str, str], source: str) -> dict[str, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    with contextlib.closing(conn):
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    assert response.status == 200, body
    seen: dict[str, Any] = json.loads(body)
    return seen


NGINX_LIKE = {  # what test_nginx.py's nginx sends for a client at 127.0.0.2
    "Host": "www.example.test",
    "X-Forwarded-For": "6.6.6.6, 127.0.0.2",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "www.example.test",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/prefixed",
}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_trusted_proxy_says_who_the_client_is(start_asgi: StartASGI, loop: str) -> None:
    server = start_asgi(echo_scope, loop=loop, root_path="/mounted")
    seen = fetch(server.addresses[0], "/echo", NGINX_LIKE, TRUSTED)
    assert seen["client"] == [UNTRUSTED, 0]  # the right-most hop it does not trust
    assert seen["scheme"] == "https"
    assert seen["server"] == ["www.example.test", 8443]
    assert seen["host"] == "www.example.test:8443"
    assert (seen["root_path"], seen["path"]) == ("/prefixed/mounted", "/prefixed/mounted/echo")
    assert seen["url"] == "https://www.example.test:8443/prefixed/mounted/echo"
    assert "x-forwarded-for" in seen["proxy_headers"]  # kept for the application to read


def test_rfc7239_forwarded(start_asgi: StartASGI) -> None:
    server = start_asgi(echo_scope)
    forwarded = {"Forwarded": 'for="198.51.100.7:5150";proto=https;host=example.com'}
    seen = fetch(server.addresses[0], "/echo", forwarded, TRUSTED)
    assert (seen["client"], seen["scheme"]) == (["198.51.100.7", 5150], "https")
    assert seen["url"] == "https://example.com/echo"


def test_an_untrusted_peer_has_its_proxy_fields_removed(
    start_asgi: StartASGI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    server = start_asgi(echo_scope)
    spoof = {**NGINX_LIKE, "Forwarded": "for=6.6.6.6;proto=https"}
    seen = fetch(server.addresses[0], "/echo", spoof, UNTRUSTED)
    assert seen["client"][0] == UNTRUSTED and seen["client"][1] != 0
    assert (seen["scheme"], seen["root_path"], seen["proxy_headers"]) == ("http", "", [])
    assert seen["server"] == ["127.0.0.1", int(server.addresses[0].rsplit(":", 1)[1])]
    assert seen["url"] == "http://www.example.test/echo"  # its own Host, nothing else
    lines = access_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith(UNTRUSTED + " - - [")
    assert "6.6.6.6" not in lines[0]


def test_the_access_log_shows_the_forwarded_client(
    start_asgi: StartASGI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kakehashi.access")
    server = start_asgi(echo_scope)
    fetch(server.addresses[0], "/echo", NGINX_LIKE, TRUSTED)
    lines = access_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith(UNTRUSTED + " - - [")


def test_loopback_excluded_from_trust(start_asgi: StartASGI) -> None:
    server = start_asgi(echo_scope, forwarded_allow_ips="10.0.0.0/8")
    seen = fetch(server.addresses[0], "/echo", NGINX_LIKE, TRUSTED)
    assert (seen["client"][0], seen["scheme"], seen["proxy_headers"]) == (TRUSTED, "http", [])
