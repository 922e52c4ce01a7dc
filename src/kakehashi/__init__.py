"""kakehashi (架け橋, "bridge"): a fast, strict, pure-Python HTTP/1.1 server for WSGI.

The package is layered; each layer imports only the ones below it:

    errors  <-  http1 (sans-I/O core)  <-  wsgi  <-  server | client  <-  cli
                                           wsgi  <-  app (framework)

The names here are the ones most programs need; each subpackage exports the rest.
"""

from kakehashi.app import App
from kakehashi.errors import KakehashiError
from kakehashi.server import Server, ServerConfig, serve

__all__ = ["App", "KakehashiError", "Server", "ServerConfig", "__version__", "serve"]
__version__ = "0.1.0"
