"""Which kind of application an object is: WSGI, ASGI 3 or ASGI 2 (uvicorn's names).

No I/O here.  ``auto`` looks at the object the way uvicorn does: a coroutine function, or
an object whose ``__call__`` is one, is ASGI 3; a class whose instances' ``__call__`` is a
coroutine function is ASGI 2 (instantiated with the scope, then awaited with receive and
send); any other callable that takes two positional arguments is WSGI.  Where that guess is
wrong (an ASGI application behind a plain-function wrapper), ``--interface`` says what it is.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kakehashi.errors import ConfigError

__all__ = ["ASGIApp", "Interface", "Message", "Receive", "Scope", "Send", "as_asgi3", "detect"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Interface(enum.Enum):
    AUTO = "auto"
    WSGI = "wsgi"
    ASGI3 = "asgi3"
    ASGI2 = "asgi2"

    @classmethod
    def named(cls, text: str) -> Interface:
        """``auto``, ``wsgi``, ``asgi`` (ASGI 3, uvicorn's spelling), ``asgi3`` or ``asgi2``.

        Raises:
            ConfigError: any other name.
        """
        name = {"asgi": "asgi3"}.get(text, text)
        try:
            return cls(name)
        except ValueError:
            raise ConfigError(
                f"--interface must be auto, wsgi, asgi (ASGI 3) or asgi2, not {text!r}"
            ) from None

    @property
    def is_asgi(self) -> bool:
        return self in (Interface.ASGI3, Interface.ASGI2)


def _is_coroutine_callable(obj: object) -> bool:
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - the method itself is inspected
    return call is not None and inspect.iscoroutinefunction(call)


def _takes(obj: Callable[..., Any], count: int) -> bool:
    """Whether ``obj`` can be called with ``count`` positional arguments (True if its
    signature cannot be read: a C callable)."""
    try:
        inspect.signature(obj).bind(*range(count))
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def detect(app: object, declared: Interface = Interface.AUTO) -> Interface:
    """The interface of ``app``: ``declared`` unless AUTO, else guessed (see the module).

    Raises:
        ConfigError: ``app`` is not callable, or (AUTO) callable in a way no interface is.
    """
    if not callable(app) or inspect.ismodule(app):
        raise ConfigError(f"{app!r} is not an application: not callable")
    if declared is not Interface.AUTO:
        return declared
    if inspect.isclass(app):
        if inspect.iscoroutinefunction(getattr(app, "__call__", None)):  # noqa: B004
            return Interface.ASGI2
        if _takes(app, 2):
            return Interface.WSGI  # a class whose instances are the WSGI iterable
    elif _is_coroutine_callable(app):
        if not _takes(app, 3):
            raise ConfigError(f"{app!r} is a coroutine function but not app(scope, receive, send)")
        return Interface.ASGI3
    elif _takes(app, 2):
        return Interface.WSGI
    raise ConfigError(
        f"{app!r} is neither a WSGI application (environ, start_response) nor an ASGI one "
        "(async scope, receive, send); --interface says which it is if the guess is wrong"
    )


def as_asgi3(app: Any, interface: Interface) -> ASGIApp:
    """An ASGI 3 callable for an ASGI 3 or ASGI 2 application."""
    if interface is Interface.ASGI3:
        asgi3: ASGIApp = app
        return asgi3

    async def asgi2(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi2
