"""auth= (Basic, bearer) and the Client's cookie jar, against Flask on kakehashi's server."""

from __future__ import annotations

import http.cookiejar
from collections.abc import Callable

import pytest

from kakehashi import client
from kakehashi.client import BasicAuth, Client, bearer
from kakehashi.server import Server
from tests.client import flask_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def start(start_server: Callable[..., Server]) -> Callable[[], str]:
    return lambda: "http://" + start_server(flask_app.app).addresses[0]


# --- auth ----------------------------------------------------------------------------------


def test_basic_auth_per_request_and_per_client(start: Callable[[], str]) -> None:
    base = start()
    r = client.get(base + "/whoami", auth=("taro", "pä:ss"))
    assert r.json() == {"type": "basic", "username": "taro", "password": "pä:ss", "token": None}
    with Client(auth=("hanako", "pw"), timeout=5) as c:
        assert c.get(base + "/whoami").json()["username"] == "hanako"
        assert c.get(base + "/whoami", auth=("jiro", "x")).json()["username"] == "jiro"
    assert client.get(base + "/whoami").status == 401


def test_bearer_token(start: Callable[[], str]) -> None:
    base = start()
    with Client(auth=bearer("abc.DEF-123_~+/="), timeout=5) as c:
        assert c.get(base + "/whoami").json()["token"] == "abc.DEF-123_~+/="
    r = client.get(base + "/whoami", auth=bearer("t"), headers={"Authorization": "Bearer mine"})
    assert r.json()["token"] == "mine"  # an explicit field wins


def test_credentials_do_not_follow_a_redirect_to_another_origin(start: Callable[[], str]) -> None:
    first, second = start(), start()
    with Client(auth=("taro", "pw"), follow_redirects=True, timeout=5) as c:
        same = c.get(first + "/redirect", params={"to": "/inspect"})
        other = c.get(first + "/redirect", params={"to": second + "/inspect"})
    assert same.json()["authorization"] == BasicAuth("taro", "pw").authorization()
    assert other.json()["authorization"] is None
    assert other.history[0].url.startswith(first)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "ü"])
def test_bad_bearer_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="bearer token"):
        bearer(token)


def test_bad_auth_values_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot contain ':'"):
        BasicAuth("a:b", "pw")
    with pytest.raises(TypeError, match="auth must be"):
        Client(auth=("only-one",))  # type: ignore[arg-type]
    assert "secret" not in repr(BasicAuth("u", "secret")) + repr(bearer("secret"))


# --- cookies -------------------------------------------------------------------------------


def test_cookies_follow_redirects_and_later_requests_by_path(start: Callable[[], str]) -> None:
    base = start()
    with Client(follow_redirects=True, timeout=5) as c:
        r = c.get(base + "/cookies/set")
        assert r.history[0].status == 302
        # sent on the redirect; "admin" is for /cookies/admin only, "evil" for another domain
        assert r.json() == {"session": "s1"}
        assert c.get(base + "/cookies/admin").json() == {"session": "s1", "admin": "a1"}
        assert sorted(cookie.name for cookie in c.cookies) == ["admin", "session"]


def test_cookies_stay_with_their_host(start: Callable[[], str]) -> None:
    base = start()
    port = base.rsplit(":", 1)[1]
    with Client(timeout=5) as c:
        c.get(base + "/cookies/set")
        assert c.get(base + "/cookies").json() == {"session": "s1"}
        # the same server under another name is another host for cookies (RFC 6265 §5.4)
        assert c.get(f"http://localhost:{port}/cookies").json() == {}


def test_an_explicit_cookie_field_wins_and_a_given_jar_is_used(start: Callable[[], str]) -> None:
    base = start()
    jar = http.cookiejar.CookieJar()
    with Client(cookies=jar, timeout=5) as c:
        c.get(base + "/cookies/set")
        r = c.get(base + "/cookies", headers={"Cookie": "mine=1"})
    assert r.json() == {"mine": "1"}
    assert {cookie.name for cookie in jar} == {"session", "admin"}


def test_one_shot_requests_keep_no_cookies(start: Callable[[], str]) -> None:
    base = start()
    client.get(base + "/cookies/set")
    assert client.get(base + "/cookies").json() == {}
