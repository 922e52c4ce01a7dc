"""The demo is the tutorial's routes; these are the exact answers the issue promises."""

from __future__ import annotations

import pytest

from kakehashi.app import Client
from kakehashi.demo import app


@pytest.fixture
def demo(validate: bool) -> Client:
    return app.test_client(validate=validate)


def test_root(demo: Client) -> None:
    response = demo.get("/")
    assert (response.status, response.body) == (200, b"Hello, World")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("/greeting/%E5%A4%AA%E9%83%8E", "太郎"),
        ("/greeting/太郎", "太郎"),
        ("/greeting/Taro", "Taro"),
        ("/greeting/%F0%9F%8C%89", "🌉"),
        ("/greeting/a%20b", "a b"),
    ],
)
def test_greeting_any_unicode_name(demo: Client, target: str, name: str) -> None:
    response = demo.get(target)
    assert response.status == 200
    assert response.body == f"Hello, {name}!".encode()


@pytest.mark.parametrize(
    "target", ["/greeting/Taro/anything", "/greeting/", "/greeting", "/favicon.ico", "//"]
)
def test_anything_else_is_a_404_page(demo: Client, target: str) -> None:
    response = demo.get(target)
    assert (response.status, response.text) == (404, "404 Not Found\n")


def test_bad_encoding_is_400_not_a_crash(demo: Client) -> None:
    assert demo.get("/greeting/%E5%A4").status == 400


def test_only_get_head_options(demo: Client) -> None:
    assert demo.post("/").headers["Allow"] == "GET, HEAD, OPTIONS"
    assert demo.head("/greeting/x").headers["Content-Length"] == str(len(b"Hello, x!"))
