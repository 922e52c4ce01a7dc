"""kakehashi.server: the WSGI server (threads sharing one poller, no thread per connection)."""

from kakehashi.server.config.settings import ServerConfig
from kakehashi.server.net.bind import Address, bind_sockets, parse_bind
from kakehashi.server.threads.server import Server, serve

__all__ = ["Address", "Server", "ServerConfig", "bind_sockets", "parse_bind", "serve"]
