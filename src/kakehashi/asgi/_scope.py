"""The HTTP connection scope of a request (asgiref ``www.rst``), built from an http1 request.

No I/O here: the engine hands in a parsed :class:`kakehashi.http1.Request` and what it knows
of the connection (client, server, scheme, TLS details), and gets back the scope dict.  The
target is split and decoded by the same strict rules as for WSGI (``http1._urls``), so a
malformed target or escape is the same 400 on both engines.

Invariants: every key of the spec is present in every scope; ``headers`` keep the order and
repetitions they arrived in, names lower-cased (the spec's rule); ``state`` is a shallow copy
of the lifespan state, never the dict itself.  Also here, as every cycle needs it: the
``type`` of a message the application sent, checked once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kakehashi.errors import LocalProtocolError, RemoteProtocolError
from kakehashi.http1 import (
    Request,
    absolute_authority,
    decode_path,
    is_plain_path,
    split_target,
)

__all__ = ["ASGI_VERSION", "SPEC_VERSION", "ScopeBuilder", "message_type", "tls_extension"]

# ASGI 3 callables; spec 2.4: send() on a closed connection raises an OSError subclass, so
# frameworks need not listen for http.disconnect while they stream (Starlette's FileResponse
# and StreamingResponse rely on this).
ASGI_VERSION = "3.0"
SPEC_VERSION = "2.4"


def message_type(message: Any) -> str:
    """The ``type`` of a message an application sent (HTTP, WebSocket or lifespan).

    Raises:
        LocalProtocolError: the message is not a dict with a ``type``.
    """
    try:
        return str(message["type"])
    except (TypeError, KeyError, IndexError):
        raise LocalProtocolError(f"an ASGI message is a dict with a 'type': {message!r}") from None


_METHODS = {
    m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")
}
_VERSIONS = {b"1.1": "1.1", b"1.0": "1.0"}


class ScopeBuilder:
    """Builds the scope of each request of one server; the parts that never change are made
    once.

    Args:
        server: the listening socket's ``(host, port)``, or ``(path, None)`` for a Unix
            socket (the spec's ``server`` key).
        root_path: ``--root-path``: where the application is mounted (no trailing slash).
        extensions: the extensions every request gets (``http.response.trailers``, ...).

    Shared by every connection of a server on one event loop; immutable after construction.
    """

    __slots__ = ("_asgi", "_extensions", "_root", "_server")

    def __init__(
        self, server: tuple[str, int | None] | None, root_path: str, extensions: dict[str, Any]
    ) -> None:
        self._root = root_path.rstrip("/")
        self._extensions = extensions
        self._server = server
        self._asgi = {"version": ASGI_VERSION, "spec_version": SPEC_VERSION}

    def build(
        self,
        request: Request,
        client: tuple[str, int] | None,
        scheme: str,
        state: dict[str, Any],
        tls: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The scope for ``request``.

        1. The target is split into path and query (RFC 9112 §3.2: all four forms); the
           path is percent-decoded strictly and read as UTF-8 (``path``), and kept as it was
           received (``raw_path``).
        2. With a root path, ``path`` includes it: a path the proxy already took it off gets
           it put back in front (as uvicorn does), so frameworks strip it the same way.
        3. An absolute-form target's authority replaces the Host field's value (RFC 9112
           §3.2.2: the server MUST ignore Host then).

        Raises:
            RemoteProtocolError: 400 for a malformed target or escape, a ``%00``, a path that
                is not UTF-8, or userinfo in an absolute-form target.
        """
        target = request.target
        method = request.method
        authority = None
        if is_plain_path(target):
            raw_path, query = target, b""  # the common case, without the general splitting
            decoded = target
        else:
            raw_path, query = split_target(method, target)
            decoded = decode_path(raw_path)
            authority = absolute_authority(target)
        try:
            path = decoded.decode("utf-8")
        except UnicodeDecodeError:
            # A str cannot carry them faithfully; raw_path could, but a path that means one
            # thing in raw_path and another in path is how routing checks are bypassed.
            raise RemoteProtocolError("the path is not valid UTF-8") from None
        root = self._root
        if root and path != root and not path.startswith(root + "/"):
            path = root + path
        # Lower-cased names, values as received, order and repetitions kept.  A loop, not a
        # comprehension (on Python 3.11 that is a function made per call).
        headers: list[tuple[bytes, bytes]] = []
        append = headers.append
        if authority is None:
            for name, value in request.headers:
                append((name.lower(), value))
        else:
            for name, value in request.headers:
                name = name.lower()
                append((name, authority if name == b"host" else value))
        extensions = self._extensions.copy()
        if tls is not None:
            extensions["tls"] = tls
        # One dict display: cheaper than copying a template and setting the rest.
        return {
            "type": "http",
            "asgi": self._asgi,
            "server": self._server,
            "root_path": root,
            "method": _METHODS.get(method) or method.decode("ascii"),
            "http_version": _VERSIONS[request.http_version],
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "client": client,
            "state": state.copy(),
            "extensions": extensions,
        }


def tls_extension(
    tls_version: int,
    cipher_suite: int | None,
    server_cert: str | None = None,
    client_cert_chain: Iterable[str] = (),
    client_cert_name: str | None = None,
    client_cert_error: str | None = None,
) -> dict[str, Any]:
    """The ``tls`` extension's dict (asgiref ``extensions.rst``, "TLS").

    Args:
        tls_version: the protocol version as on the wire (0x0303 for TLS 1.2, 0x0304 for
            1.3).
        cipher_suite: the IANA number of the cipher suite, None if unknown.
        server_cert: the server's certificate as PEM, None if not given.
        client_cert_chain: the client's certificates as PEM, its own first.
        client_cert_name: the client certificate's subject (RFC 4514), None if none.
        client_cert_error: why the client certificate was refused, None if it was not.
    """
    return {
        "server_cert": server_cert,
        "client_cert_chain": list(client_cert_chain),
        "client_cert_name": client_cert_name,
        "client_cert_error": client_cert_error,
        "tls_version": tls_version,
        "cipher_suite": cipher_suite,
    }
