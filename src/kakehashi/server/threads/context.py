"""ServerContext: the thread engine's shared state: the engine-neutral part
(engine/context.py) and what only this engine needs: the WSGI application, the environ
builder and its head cache, the parked-body budget and the request watch.

No sockets here.  Worker threads only read it (see SharedContext for the exceptions).
"""

from __future__ import annotations

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.engine.context import SharedContext
from kakehashi.server.threads.environ import ENVIRON_READER
from kakehashi.server.threads.parked_body import BodyBudget
from kakehashi.server.threads.watch import RequestWatch
from kakehashi.wsgi import EnvironBuilder, HeadCache, WSGIApp

__all__ = ["ServerContext"]


class ServerContext(SharedContext):
    """The thread engine's context.  Built by the Server before its threads."""

    __slots__ = ("app", "body_budget", "environ", "head_cache", "watch")

    def __init__(self, app: WSGIApp, config: ServerConfig, environ: EnvironBuilder) -> None:
        super().__init__(config, ENVIRON_READER)
        self.app = app
        self.environ = environ
        self.head_cache = HeadCache()
        self.body_budget = BodyBudget(config.parked_body_budget)
        # Only --request-timeout reads it: without one, requests are not tracked at all.
        self.watch = RequestWatch() if config.request_timeout else None
