"""kakehashi.server: the WSGI server (threads sharing one poller, no thread per connection)."""

from kakehashi.server.config.settings import Address, ServerConfig, parse_bind
from kakehashi.server.threads.server import Server, bind_sockets, serve

__all__ = ["Address", "Server", "ServerConfig", "bind_sockets", "parse_bind", "serve"]
