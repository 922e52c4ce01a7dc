"""Telling WSGI, ASGI 3 and ASGI 2 applications apart, and the ASGI 2 adapter."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from kakehashi.asgi import Interface, as_asgi3, detect
from kakehashi.errors import ConfigError


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return [b""]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "seen", "scope": scope})


class ASGIObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class WSGIObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class ASGI2:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "asgi2", "path": self.scope["path"]})


def test_auto_detection() -> None:
    assert detect(wsgi_app) is Interface.WSGI
    assert detect(WSGIObject()) is Interface.WSGI
    assert detect(asgi_app) is Interface.ASGI3
    assert detect(ASGIObject()) is Interface.ASGI3
    assert detect(ASGI2) is Interface.ASGI2


def test_declared_interface_wins_where_guessing_is_wrong() -> None:
    wrapped = functools.wraps(asgi_app)(lambda *a: asgi_app(*a))  # a plain function
    assert detect(wrapped, Interface.ASGI3) is Interface.ASGI3
    assert detect(asgi_app, Interface.WSGI) is Interface.WSGI


@pytest.mark.parametrize(
    "app", [42, "module:app", functools, lambda: None, lambda a, b, c, d: None]
)
def test_neither_is_one_clear_error(app: Any) -> None:
    with pytest.raises(ConfigError, match="application"):
        detect(app)


def test_an_async_function_with_the_wrong_arguments_is_refused() -> None:
    async def two(scope: Any, receive: Any) -> None:
        pass

    with pytest.raises(ConfigError, match="scope, receive, send"):
        detect(two)


def test_interface_names_are_uvicorns() -> None:
    assert Interface.named("asgi") is Interface.ASGI3
    assert Interface.named("asgi2") is Interface.ASGI2
    assert Interface.named("wsgi") is Interface.WSGI
    assert Interface.named("auto") is Interface.AUTO
    with pytest.raises(ConfigError, match="--interface"):
        Interface.named("rsgi")


def test_asgi2_adapter_instantiates_then_awaits() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {}

    asyncio.run(as_asgi3(ASGI2, Interface.ASGI2)({"path": "/x"}, receive, send))
    assert sent == [{"type": "asgi2", "path": "/x"}]
    assert as_asgi3(asgi_app, Interface.ASGI3) is asgi_app


class WSGIIterable:
    """A WSGI application as a class: called with environ and start_response, its instance
    is the response iterable (PEP 3333 allows it)."""

    def __init__(self, environ: Any, start_response: Any) -> None:
        self.environ = environ

    def __iter__(self) -> Any:
        return iter([b""])


def test_a_class_taking_environ_and_start_response_is_wsgi() -> None:
    assert detect(WSGIIterable) is Interface.WSGI
    with pytest.raises(ConfigError):
        detect(type("NoArgs", (), {}))  # a class that takes no arguments is neither


def test_a_c_callable_without_a_signature_is_taken_as_wsgi() -> None:
    # Its signature cannot be read, so it is given the benefit of the doubt.
    assert detect(getattr) is Interface.WSGI
    assert Interface.ASGI3.is_asgi and Interface.ASGI2.is_asgi and not Interface.WSGI.is_asgi
