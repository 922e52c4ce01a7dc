"""kakehashi.server.aio: the ASGI engine, on asyncio (or uvloop), one event loop a process.

Rooms (docs/asgi.md): ``server`` (life and shutdown order), ``connection`` (an
``asyncio.Protocol`` per connection: parsing with kakehashi.http1's fast path, flow control
both ways, the timeouts), ``exchange`` (one request: the application's receive and send),
``lifespan``, ``watchdog`` (a blocked loop is logged), ``loops`` (``--loop``), ``record``
(the access log and metrics), ``proxies`` (trusted proxy fields in the scope),
``proxyproto`` (``--proxy-protocol``).  It imports nothing of the thread engine.
"""

from kakehashi.server.aio.lifespan import LifespanFailed
from kakehashi.server.aio.server import AsyncServer

__all__ = ["AsyncServer", "LifespanFailed"]
