"""kakehashi.server: the WSGI server (threads sharing one poller, no thread per connection)
and the ASGI one (one event loop, ``kakehashi.server.aio``); :func:`serve` picks by the
application."""

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.net.bind import Address, bind_sockets, parse_bind
from kakehashi.server.serving import serve
from kakehashi.server.threads.server import Server

__all__ = ["Address", "Server", "ServerConfig", "bind_sockets", "parse_bind", "serve"]
