"""Proxies: HTTP_PROXY, HTTPS_PROXY and NO_PROXY, trust_env=False, absolute-form requests and
CONNECT tunnels, through a small proxy written for the tests (tests/client/proxy_server.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from kakehashi.client import Client, Proxies, Proxy
from kakehashi.errors import ConnectError
from kakehashi.server import Server
from tests.client import flask_app
from tests.client.proxy_server import proxy_server
from tests.client.servers import free_port, http_server, self_signed_cert, server_context

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def origin(start_server: Callable[..., Server]) -> str:
    return start_server(flask_app.app).addresses[0]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.mark.integration
def test_http_goes_to_the_proxy_in_absolute_form(origin: str, no_env: pytest.MonkeyPatch) -> None:
    with proxy_server() as (proxy, log), Client(proxy=proxy, timeout=5) as c:
        r = c.post(f"http://{origin}/inspect", params={"q": "1"}, json={"via": "proxy"})
    assert r.json()["json"] == {"via": "proxy"} and r.json()["args"] == {"q": ["1"]}
    assert log.lines == [f"POST http://{origin}/inspect?q=1 HTTP/1.1"]
    assert b"Host: " + origin.encode() in r.request_head


@pytest.mark.integration
def test_the_environment_decides_and_trust_env_false_ignores_it(
    origin: str, no_env: pytest.MonkeyPatch
) -> None:
    with proxy_server() as (proxy, log):
        no_env.setenv("HTTP_PROXY", f"http://{proxy}")
        with Client(timeout=5) as c:
            assert c.get(f"http://{origin}/args").status == 200
        with Client(timeout=5, trust_env=False) as c:
            assert c.get(f"http://{origin}/args").status == 200
        no_env.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
        with Client(timeout=5) as c:
            assert c.get(f"http://{origin}/args").status == 200
    assert log.lines == [f"GET http://{origin}/args HTTP/1.1"]


@pytest.mark.integration
def test_https_goes_through_a_connect_tunnel_with_tls_to_the_origin(
    tmp_path: Path, no_env: pytest.MonkeyPatch
) -> None:
    key, crt = self_signed_cert(tmp_path)
    context = ssl.create_default_context(cafile=str(crt))
    with http_server(server_context(key, crt)) as url, proxy_server() as (proxy, log):
        no_env.setenv("https_proxy", proxy)
        with Client(timeout=5, ssl_context=context) as c:
            first, second = c.get(url + "/"), c.get(url + "/chunked")
    assert (first.body, second.body) == (b"Hello, World", b"Hello, chunked World")
    assert second.reused  # the tunnel is a kept-alive connection like any other
    assert log.lines == [f"CONNECT {url.removeprefix('https://')} HTTP/1.1"]


@pytest.mark.integration
def test_proxy_credentials_from_the_proxy_url(origin: str, no_env: pytest.MonkeyPatch) -> None:
    with proxy_server(credentials="me:s3cret") as (proxy, log):
        with Client(proxy=proxy, timeout=5) as c:
            assert c.get(f"http://{origin}/args").status == 407
        with Client(proxy=f"http://me:s3cret@{proxy}", timeout=5) as c:
            r = c.get(f"http://{origin}/inspect")
            assert r.status == 200 and r.json()["authorization"] is None
        with (
            Client(proxy=proxy, timeout=5) as c,
            pytest.raises(ConnectError, match=r"refused a tunnel .* 407"),
        ):
            c.get(f"https://{origin}/")
    assert len(log.lines) == 3


def test_a_proxy_that_is_not_listening_is_a_connect_error(no_env: pytest.MonkeyPatch) -> None:
    with Client(proxy=f"127.0.0.1:{free_port()}", timeout=2) as c, pytest.raises(ConnectError):
        c.get("https://example.test/")


def _env(**values: str) -> dict[str, str]:
    return values


@pytest.mark.parametrize(
    ("env", "origin", "expected"),
    [
        (_env(http_proxy="p:1"), ("http", "a.test", 80), "p:1"),
        (_env(HTTP_PROXY="p:1"), ("http", "a.test", 80), "p:1"),
        (_env(http_proxy="p:1", HTTP_PROXY="q:2"), ("http", "a.test", 80), "p:1"),
        (_env(http_proxy="p:1"), ("https", "a.test", 443), None),
        (_env(HTTPS_PROXY="http://s:3"), ("https", "a.test", 443), "s:3"),
        # httpoxy: in a CGI process HTTP_PROXY may come from a request's Proxy: header
        (_env(HTTP_PROXY="p:1", REQUEST_METHOD="GET"), ("http", "a.test", 80), None),
        (_env(http_proxy="p:1", REQUEST_METHOD="GET"), ("http", "a.test", 80), "p:1"),
        (_env(http_proxy="p:1", no_proxy="*"), ("http", "a.test", 80), None),
        (_env(http_proxy="p:1", no_proxy="a.test"), ("http", "a.test", 80), None),
        (_env(http_proxy="p:1", no_proxy="a.test"), ("http", "x.a.test", 80), None),
        (_env(http_proxy="p:1", no_proxy=".a.test"), ("http", "x.a.test", 80), None),
        (_env(http_proxy="p:1", no_proxy="a.test"), ("http", "ba.test", 80), "p:1"),
        (_env(http_proxy="p:1", no_proxy="a.test:8080"), ("http", "a.test", 80), "p:1"),
        (_env(http_proxy="p:1", no_proxy="a.test:8080"), ("http", "a.test", 8080), None),
        (_env(http_proxy="p:1", NO_PROXY="10.0.0.0/8,b"), ("http", "10.1.2.3", 80), None),
        (_env(http_proxy="p:1", no_proxy="10.0.0.0/8"), ("http", "11.1.2.3", 80), "p:1"),
        (_env(http_proxy="p:1", no_proxy="::1"), ("http", "::1", 80), None),
        (_env(http_proxy="p:1", no_proxy="[::1]:80"), ("http", "::1", 80), None),
    ],
)
def test_environment_rules(
    env: dict[str, str], origin: tuple[str, str, int], expected: str
) -> None:
    proxy = Proxies.from_env(env).for_origin(origin)
    assert (f"{proxy.host}:{proxy.port}" if proxy else None) == expected


@pytest.mark.parametrize("text", ["https://p:1", "socks5://p:1", "http://:1", "http://p:x"])
def test_malformed_proxies_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="prox"):
        Proxy.parse(text)


def test_a_malformed_proxy_variable_is_named() -> None:
    with pytest.raises(ValueError, match="https_proxy: only http:// proxies"):
        Proxies.from_env({"HTTPS_PROXY": "socks5://p:1080"})
