"""kakehashi (架け橋, "bridge"): a fast, strict, pure-Python HTTP/1.1 server for WSGI.

The package is layered; each layer imports only the ones below it:

    errors  <-  http1 (sans-I/O core)  <-  wsgi  <-  server | client  <-  cli
                                           wsgi  <-  app (framework)
"""

from kakehashi.errors import KakehashiError

__all__ = ["KakehashiError", "__version__"]
__version__ = "0.1.0"
