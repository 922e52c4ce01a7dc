"""The WSGI side of trusted proxies and ``--root-path``: applying what edge/proxies.py says
about the client to the environ, and mounting the application under the root path.

- A trusted proxy's view sets ``REMOTE_ADDR``/``REMOTE_PORT``, ``wsgi.url_scheme``,
  ``HTTP_HOST``/``SERVER_NAME``/``SERVER_PORT``; its prefix goes in front of ``SCRIPT_NAME``.
- An untrusted peer's proxy fields are removed from the environ.
- Under ``--root-path`` a path is split into ``SCRIPT_NAME`` and ``PATH_INFO``; any other
  path is left whole in ``PATH_INFO`` (the proxy already took the prefix off), with
  ``SCRIPT_NAME`` still the prefix, as waitress's ``url_prefix`` does.
"""

from __future__ import annotations

from typing import Any

from kakehashi.http1 import Request
from kakehashi.server.edge.proxies import ClientView, TrustedPeers, root_path_key, see_client
from kakehashi.wsgi import EnvironBuilder, InputStream

__all__ = [
    "ENVIRON_READER",
    "EnvironReader",
    "ProxiedEnvironBuilder",
    "ProxyHeaders",
    "split_root_path",
]

_DEFAULT_PORTS = {"http": "80", "https": "443"}
# The environ keys of the proxy fields (edge/proxies.py's PROXY_FIELDS), checked per request.
_KEYS = {
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
    "x-forwarded-port": "HTTP_X_FORWARDED_PORT",
    "x-forwarded-prefix": "HTTP_X_FORWARDED_PREFIX",
    "host": "HTTP_HOST",
}
_X_FOR, _X_PROTO, _FORWARDED = (
    _KEYS["x-forwarded-for"],
    _KEYS["x-forwarded-proto"],
    _KEYS["forwarded"],
)
_X_HOST, _X_PORT, _X_PREFIX = (
    _KEYS["x-forwarded-host"],
    _KEYS["x-forwarded-port"],
    _KEYS["x-forwarded-prefix"],
)


class EnvironReader:
    """How the access log reads a WSGI environ (observe/accesslog.py's RequestReader): as
    the application left it, so what a middleware set (a client address, a method) shows."""

    __slots__ = ()

    @staticmethod
    def summary(environ: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
        get = environ.get
        return (
            environ["REMOTE_ADDR"],
            environ["REQUEST_METHOD"],
            environ["RAW_URI"],
            environ["SERVER_PROTOCOL"],
            get("HTTP_REFERER"),
            get("HTTP_USER_AGENT"),
            get("HTTP_AUTHORIZATION"),
        )

    @staticmethod
    def header(environ: dict[str, Any], name: str) -> Any:
        key = name.upper().replace("-", "_")
        return environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key)

    @staticmethod
    def path(environ: dict[str, Any]) -> Any:
        return environ.get("PATH_INFO")

    @staticmethod
    def query(environ: dict[str, Any]) -> Any:
        return environ.get("QUERY_STRING")

    @staticmethod
    def variable(environ: dict[str, Any], key: str) -> Any:
        return environ.get(key)


ENVIRON_READER = EnvironReader()


class ProxyHeaders:
    """Applies the proxy headers of trusted peers to an environ and removes the others'."""

    __slots__ = ("trusted",)

    def __init__(self, trusted: TrustedPeers) -> None:
        self.trusted = trusted

    def apply(self, environ: dict[str, Any], peer_host: str) -> None:
        """Rewrite ``environ`` of a request that came from ``peer_host`` (``""``: Unix)."""
        if not (
            _X_FOR in environ
            or _X_PROTO in environ
            or _FORWARDED in environ
            or _X_HOST in environ
            or _X_PORT in environ
            or _X_PREFIX in environ
        ):
            return  # the common case, checked without building anything (~0.1 µs)
        view = see_client(self.trusted, peer_host, lambda name: environ.get(_KEYS[name]))
        if view is None:
            return
        for name in view.remove:
            del environ[_KEYS[name]]
        _apply_view(environ, view)


def _apply_view(environ: dict[str, Any], view: ClientView) -> None:
    if view.addr is not None:
        environ["REMOTE_ADDR"] = view.addr
        environ["REMOTE_PORT"] = view.port or "0"
    if view.scheme is not None:
        environ["wsgi.url_scheme"] = view.scheme
    scheme = environ["wsgi.url_scheme"]
    default_port = _DEFAULT_PORTS.get(scheme, "")
    name = view.host
    if name is not None:
        environ["SERVER_NAME"] = name
        port = view.host_port or default_port
        shown = f"[{name}]" if ":" in name else name
        environ["HTTP_HOST"] = shown if port == default_port else f"{shown}:{port}"
    if view.host_port is not None or name is not None:
        environ["SERVER_PORT"] = view.host_port or default_port
    if view.prefix is not None:
        environ["SCRIPT_NAME"] = view.prefix + environ["SCRIPT_NAME"]


def split_root_path(environ: dict[str, Any], root: str) -> None:
    """Mount the application at ``root`` (latin-1 as PATH_INFO, no trailing slash)."""
    path = environ["PATH_INFO"]
    if path == root:
        environ["PATH_INFO"] = ""
    elif path.startswith(root) and path[len(root)] == "/":
        environ["PATH_INFO"] = path[len(root) :]
    environ["SCRIPT_NAME"] = root


_build = EnvironBuilder.build  # called directly: cheaper than super() on every request


class ProxiedEnvironBuilder(EnvironBuilder):
    """An EnvironBuilder that also applies ``--root-path`` and the proxy headers."""

    __slots__ = ("_proxies", "_root")

    def __init__(self, base: dict[str, Any], trusted: TrustedPeers, root_path: str = "") -> None:
        super().__init__(base)
        self._proxies = ProxyHeaders(trusted)
        self._root = root_path_key(root_path)

    def build(self, request: Request, body: InputStream, peer: tuple[str, int]) -> dict[str, Any]:
        environ = _build(self, request, body, peer)
        if self._root:
            split_root_path(environ, self._root)
        self._proxies.apply(environ, peer[0])
        return environ
