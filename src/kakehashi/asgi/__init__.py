"""kakehashi.asgi: ASGI 3 glue, sans-I/O (the twin of kakehashi.wsgi).

No sockets, event loop, threads, clocks or logging here: scopes built from parsed
:mod:`kakehashi.http1` requests, and the ``http``, ``websocket`` and ``lifespan`` cycles as
plain state machines that check what an application sends.  An engine
(``kakehashi.server.aio``) does the waiting and the I/O.
"""

from kakehashi.asgi._http import FieldCache, HTTPCycle, PathSend, Phase, error_page
from kakehashi.asgi._interface import (
    ASGIApp,
    Interface,
    Message,
    Receive,
    Scope,
    Send,
    as_asgi3,
    detect,
)
from kakehashi.asgi._lifespan import LifespanCycle, LifespanPhase
from kakehashi.asgi._scope import ASGI_VERSION, SPEC_VERSION, ScopeBuilder, tls_extension
from kakehashi.asgi._websocket import WS_EXTENSIONS, WebSocketCycle, WSPhase, websocket_scope

__all__ = [
    "ASGI_VERSION",
    "SPEC_VERSION",
    "WS_EXTENSIONS",
    "ASGIApp",
    "FieldCache",
    "HTTPCycle",
    "Interface",
    "LifespanCycle",
    "LifespanPhase",
    "Message",
    "PathSend",
    "Phase",
    "Receive",
    "Scope",
    "ScopeBuilder",
    "Send",
    "WSPhase",
    "WebSocketCycle",
    "as_asgi3",
    "detect",
    "error_page",
    "tls_extension",
    "websocket_scope",
]
